"""Players belong to people, through the front door: the app user's link code redeemed by
the game server's key links the player; codes expire, are single-use and for one game; a
player has one user; owners are never public; the chain writer's lookup finds the primary
wallet."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.identity.players import primary_wallet_for_player
from core.platform.db import session_scope
from tests.integration.identity.conftest import SignIn, new_account


def _refused(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert (body["code"], set(body)) == (code, {"detail", "code", "errors"}), body


def _code(api: httpx.Client, user: Any, game_id: str) -> str:
    answer = api.post("/v1/players/link-codes", json={"game_id": game_id}, headers=user.auth)
    assert answer.status_code == 201, answer.text
    assert answer.json()["game_id"] == game_id
    return str(answer.json()["code"])


def _redeem(api: httpx.Client, game: Any, code: str, player_id: str) -> httpx.Response:
    return api.post(
        "/v1/players/link", json={"code": code, "player_id": player_id}, headers=game.auth
    )


def test_a_code_from_the_user_redeemed_by_the_game_links_the_player(
    api: httpx.Client, new_user: Any, new_game: Any, sign_in: SignIn, db_engine: Engine
) -> None:
    user, game = new_user(), new_game()
    code = _code(api, user, game.game_id)
    assert len(code.replace("-", "")) == 10

    linked = _redeem(api, game, code.lower(), "hero-7")  # case and dashes do not matter
    assert linked.status_code == 200, linked.text
    assert linked.json() | {"linked_at": None} == {
        "game_id": game.game_id,
        "player_id": "hero-7",
        "user_id": user.user_id,
        "linked_at": None,
        "created": True,
    }
    owner = api.get("/v1/players/hero-7/owner", headers=game.auth)
    assert owner.status_code == 200 and owner.json()["user_id"] == user.user_id
    mine = api.get("/v1/players/links", headers=user.auth).json()["players"]
    assert [(p["game_id"], p["player_id"]) for p in mine] == [(game.game_id, "hero-7")]

    # The chain writer's lookup: no wallet yet, then the primary one.
    with session_scope() as session:
        assert primary_wallet_for_player(session, game.game_id, "hero-7") is None
        assert primary_wallet_for_player(session, game.game_id, "nobody") is None
    first, second = new_account(), new_account()
    assert sign_in.link(user, first).status_code == 200
    assert sign_in.link(user, second).status_code == 200
    with session_scope() as session:
        assert primary_wallet_for_player(session, game.game_id, "hero-7") == first.address
    assert api.post(f"/v1/wallets/{second.address}/primary", headers=user.auth).is_success
    with session_scope() as session:
        assert primary_wallet_for_player(session, game.game_id, "hero-7") == second.address

    with db_engine.connect() as conn:
        audited = conn.execute(
            text("SELECT action, subject FROM link_audit_log WHERE user_id = :u ORDER BY id"),
            {"u": user.user_id},
        ).all()
    assert audited[0] == ("player_linked", f"{game.game_id}/hero-7")


def test_a_code_is_single_use_short_lived_and_for_one_game(
    api: httpx.Client, new_user: Any, new_game: Any, db_engine: Engine
) -> None:
    user, game, other_game = new_user(), new_game(), new_game()
    code = _code(api, user, game.game_id)
    _refused(_redeem(api, other_game, code, "p1"), 403, "link_code_wrong_game")
    assert _redeem(api, game, code, "p1").status_code == 200  # the wrong game did not use it
    _refused(_redeem(api, game, code, "p2"), 409, "link_code_used")

    expiring = _code(api, user, game.game_id)
    with db_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE player_link_codes SET expires_at = now() - interval '1 second' "
                "WHERE user_id = :u AND used_at IS NULL"
            ),
            {"u": user.user_id},
        )
    _refused(_redeem(api, game, expiring, "p3"), 422, "link_code_expired")
    _refused(_redeem(api, game, "ABCDE-FGHJK", "p3"), 404, "link_code_unknown")
    _refused(
        api.post("/v1/players/link-codes", json={"game_id": "no-such-game"}, headers=user.auth),
        404,
        "game_not_found",
    )
    assert api.get("/v1/players/p3/owner", headers=game.auth).status_code == 404


def test_a_player_belongs_to_one_user(api: httpx.Client, new_user: Any, new_game: Any) -> None:
    alice, bob, game = new_user(), new_user(), new_game()
    assert _redeem(api, game, _code(api, alice, game.game_id), "shared").status_code == 200
    bobs = _code(api, bob, game.game_id)
    _refused(_redeem(api, game, bobs, "shared"), 409, "player_linked_to_another_user")
    # Alice linking the same player again is a no-op that uses her code.
    again = _redeem(api, game, _code(api, alice, game.game_id), "shared")
    assert again.status_code == 200 and again.json()["created"] is False

    # Alice withdraws her consent; Bob's unused code now links the player to him.
    assert (
        api.delete(f"/v1/players/links/{game.game_id}/shared", headers=bob.auth).status_code == 404
    )
    assert (
        api.delete(f"/v1/players/links/{game.game_id}/shared", headers=alice.auth).status_code
        == 204
    )
    assert _redeem(api, game, bobs, "shared").json()["user_id"] == bob.user_id


def test_neither_side_alone_can_link_and_owners_are_not_public(
    api: httpx.Client, new_user: Any, new_game: Any
) -> None:
    user, game, other_game = new_user(), new_game(), new_game()
    code = _code(api, user, game.game_id)
    # The user cannot redeem their own code: redeeming needs the game's key.
    _refused(
        api.post("/v1/players/link", json={"code": code, "player_id": "p"}, headers=user.auth),
        401,
        "unauthorized",
    )
    # The game cannot make a code: that needs the user's token.
    _refused(
        api.post("/v1/players/link-codes", json={"game_id": game.game_id}, headers=game.auth),
        401,
        "unauthorized",
    )
    assert _redeem(api, game, code, "p").status_code == 200
    _refused(api.get("/v1/players/p/owner"), 401, "unauthorized")
    _refused(api.get("/v1/players/p/owner", headers=user.auth), 401, "unauthorized")
    # Another game does not see this game's players.
    _refused(api.get("/v1/players/p/owner", headers=other_game.auth), 404, "player_link_not_found")
    _refused(api.get("/v1/players/links"), 401, "unauthorized")
