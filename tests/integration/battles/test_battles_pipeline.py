"""POST /v1/battles -> battles.requests.v1 -> engine agent -> PostgreSQL (result, ratings,
history) -> match_result on game.events.v1 -> player totals, with the real services:
duplicates change nothing, malformed requests land in the DLQ with the reason."""

import json
import os
import signal
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from kafka import KafkaProducer
from openskill.models import PlackettLuce
from sqlalchemy import text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cli.battles_cmd import match
from cli.main import app
from cli.services import SERVICES
from cli.stack import Stack
from core.battles.contracts import BattleRequest
from core.platform.messages import DeadLetter
from core.platform.topics import BATTLE_REQUESTS, BATTLE_REQUESTS_DLQ
from tests.integration.events.test_events_pipeline import read_topic
from tests.streaming_helpers import (  # noqa: F401 - fixtures
    GameWithKey,
    api_fixture,
    game_fixture,
    totals,
    wait_for,
    worker_fixture,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]


def post_battle(api: httpx.Client, game: GameWithKey, sides, **extra) -> dict:
    response = api.post(
        "/v1/battles",
        json={"mode": "duel", "sides": sides, **extra},
        headers={"X-Api-Key": game.api_key},
    )
    assert response.status_code == 202, response.text
    return response.json()


def battle(api: httpx.Client, game: GameWithKey, battle_id: str) -> dict:
    response = api.get(f"/v1/battles/{battle_id}", headers={"X-Api-Key": game.api_key})
    assert response.status_code == 200, response.text
    return response.json()


def wait_done(api: httpx.Client, game: GameWithKey, battle_id: str) -> dict:
    """The battle once the engine resolved or rejected it (one produced straight onto the
    topic is unknown until the engine records it)."""

    def done() -> dict | None:
        response = api.get(f"/v1/battles/{battle_id}", headers={"X-Api-Key": game.api_key})
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        found = response.json()
        return found if found["status"] != "queued" else None

    return wait_for(f"battle {battle_id} resolved", done)


def profile(api: httpx.Client, game: GameWithKey, player: str) -> httpx.Response:
    return api.get(f"/v1/battles/players/{player}", headers={"X-Api-Key": game.api_key})


def snapshot(engine: Engine, game_id: str) -> list:
    with engine.connect() as conn:
        return [
            conn.execute(
                text(
                    "SELECT player_id, mu, sigma, battles, wins FROM players WHERE game_id = :g"
                    " ORDER BY 1"
                ),
                {"g": game_id},
            ).all(),
            conn.execute(
                text("SELECT count(*) FROM rating_history WHERE game_id = :g"), {"g": game_id}
            ).scalar_one(),
        ]


def test_a_queued_battle_is_resolved_rated_and_reaches_the_totals(
    api: httpx.Client, game: GameWithKey, db_engine: Engine
) -> None:
    queued = post_battle(api, game, [["ann"], ["bob"]])
    assert queued["status"] == "queued" and queued["created"] is True
    duel = wait_done(api, game, queued["battle_id"])
    assert duel["status"] == "resolved"
    assert sorted(duel["ranks"]) == [1, 2]
    assert duel["engine_version"] == 2 and isinstance(duel["seed"], int)
    assert duel["win_probabilities"] == [0.5, 0.5]

    model = PlackettLuce()
    expected = model.rate([[model.rating()], [model.rating()]], ranks=duel["ranks"])
    changes = {c["player_id"]: c for c in duel["rating_changes"]}
    for player, team in zip(("ann", "bob"), expected, strict=True):
        assert (changes[player]["mu_after"], changes[player]["sigma_after"]) == (
            team[0].mu,
            team[0].sigma,
        )
        shown = profile(api, game, player).json()
        assert (shown["mu"], shown["sigma"], shown["battles"]) == (team[0].mu, team[0].sigma, 1)

    # Teams and more than two sides; ann's second battle starts from her new rating.
    queued = post_battle(api, game, [["ann", "cat"], ["bob"], ["dan"]], mode="brawl")
    brawl = wait_done(api, game, queued["battle_id"])
    assert sorted(brawl["ranks"]) == [1, 2, 3]
    ann = next(c for c in brawl["rating_changes"] if c["player_id"] == "ann")
    assert ann["mu_before"] == changes["ann"]["mu_after"]

    # Each player's match_result reached the scoring agent's totals.
    got = wait_for(
        "totals of six match results",
        lambda: (
            (t := totals(db_engine, game.game_id))
            and sum(row["matches"] for row in t.values()) == 6
            and t
        ),
    )
    winners = {
        p
        for b in (duel, brawl)
        for side, r in zip(b["sides"], b["ranks"], strict=True)
        if r == 1
        for p in side
    }
    assert {p for p, row in got.items() if row["wins"]} == winners
    assert [got[p]["matches"] for p in ("ann", "bob", "cat", "dan")] == [2, 2, 1, 1]


def test_duplicates_and_retries_change_nothing(
    api: httpx.Client, game: GameWithKey, db_engine: Engine, stack_settings
) -> None:
    key = f"k-{uuid.uuid4().hex[:8]}"
    first = post_battle(api, game, [["eve"], ["fay"]], idempotency_key=key)
    done = wait_done(api, game, first["battle_id"])
    again = post_battle(api, game, [["eve"], ["fay"]], idempotency_key=key)
    assert again == {"battle_id": first["battle_id"], "status": "resolved", "created": False}
    other = api.post(
        "/v1/battles",
        json={"mode": "duel", "sides": [["eve"], ["gus"]], "idempotency_key": key},
        headers={"X-Api-Key": game.api_key},
    )
    assert other.status_code == 409, other.text
    assert other.json()["code"] == "idempotency_key_reused"
    before = snapshot(db_engine, game.game_id)

    # The same request straight onto the topic (a duplicate delivery), then a marker battle
    # in the same partition: once the marker is resolved, the duplicate was handled.
    request = BattleRequest(
        battle_id=uuid.UUID(first["battle_id"]),
        game_id=game.game_id,
        mode="duel",
        sides=[["eve"], ["fay"]],
        requested_at=datetime.now(UTC),
    )
    marker = request.model_copy(update={"battle_id": uuid.uuid4(), "sides": [["hal"], ["ida"]]})
    producer = KafkaProducer(bootstrap_servers=stack_settings.kafka_bootstrap, acks="all")
    for r in (request, request, marker):
        producer.send(BATTLE_REQUESTS, r.model_dump_json().encode(), partition=0).get(30)
    producer.close()
    wait_done(api, game, str(marker.battle_id))

    after = snapshot(db_engine, game.game_id)
    assert [row for row in after[0] if row[0] in ("eve", "fay")] == before[0]
    assert after[1] == before[1] + 2  # only the marker's two players were rated
    assert battle(api, game, first["battle_id"]) == done
    wait_for("the marker's totals", lambda: "hal" in totals(db_engine, game.game_id))
    got = totals(db_engine, game.game_id)
    assert (got["eve"]["matches"], got["fay"]["matches"]) == (1, 1)


def _everything(engine: Engine, except_game: str) -> list:
    queries = (
        "SELECT game_id, player_id, mu, sigma, battles, wins, losses FROM players",
        "SELECT battle_id, status, result::text, seed, resolved_at FROM battles",
        "SELECT battle_id, player_id, mu_before, mu_after FROM rating_history",
        "SELECT game_id, player_id, matches, wins, total_score FROM player_totals",
    )
    with engine.connect() as conn:
        return [
            conn.execute(
                text(f"{q} WHERE game_id <> :g ORDER BY 1, 2"),  # the queries above, no input
                {"g": except_game},
            ).all()
            for q in queries
        ]


def test_a_replay_of_the_topic_from_offset_zero_changes_nothing(
    api: httpx.Client,
    game: GameWithKey,
    db_engine: Engine,
    worker: Stack,
    stack_settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [post_battle(api, game, [[f"r{i}"], [f"s{i}"]])["battle_id"] for i in range(6)]
    for battle_id in ids:
        wait_done(api, game, battle_id)
    sentinel_game = f"s-{uuid.uuid4().hex[:10]}"
    wait_for("the match results", lambda: len(totals(db_engine, game.game_id)) == 12)
    worker.stop("worker", report=lambda _m: None)
    before = _everything(db_engine, sentinel_game)

    # One marker battle per partition, after everything else: when the replaying group has
    # resolved all of them, it has read every partition from offset 0 to the end.
    producer = KafkaProducer(bootstrap_servers=stack_settings.kafka_bootstrap, acks="all")
    partitions = sorted(producer.partitions_for(BATTLE_REQUESTS))
    markers = []
    for partition in partitions:
        marker = BattleRequest(
            battle_id=uuid.uuid4(),
            game_id=sentinel_game,
            mode="duel",
            sides=[[f"m{partition}"], [f"n{partition}"]],
            requested_at=datetime.now(UTC),
        )
        markers.append(marker.battle_id)
        producer.send(BATTLE_REQUESTS, marker.model_dump_json().encode(), partition=partition).get(
            30
        )
    producer.close()

    replay_id = f"replay-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("STRIDE_STREAMS_APP_ID", replay_id)
    replay = Stack(stack_settings.model_copy(update={"streams_app_id": replay_id}), SERVICES)
    replay.up(["worker"], report=lambda _m: None)
    try:
        wait_for(
            "the marker battles resolved",
            lambda: _resolved(db_engine, markers) == len(markers),
            timeout=120,
        )
    finally:
        replay.stop("worker", report=lambda _m: None)
        monkeypatch.delenv("STRIDE_STREAMS_APP_ID")
        worker.up(["worker"], report=lambda _m: None)
    assert _everything(db_engine, sentinel_game) == before


def test_kill_9_of_the_engine_mid_stream_changes_nothing(
    api: httpx.Client, game: GameWithKey, db_engine: Engine, worker: Stack
) -> None:
    """Battles posted while the worker is killed and after: each is resolved and rated once."""
    ids = [post_battle(api, game, [[f"k{i}"], [f"l{i}"]])["battle_id"] for i in range(20)]
    pid = worker.pid("worker")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # its Faust processes die with it (PR_SET_PDEATHSIG)
    os.waitpid(pid, 0)
    ids += [post_battle(api, game, [[f"k{i}"], [f"l{i}"]])["battle_id"] for i in range(20, 30)]
    worker.up(["worker"], report=lambda _m: None)
    wait_for("every battle resolved", lambda: _resolved(db_engine, ids) == len(ids))
    with db_engine.connect() as conn:
        rated = conn.execute(
            text(
                "SELECT count(*), count(DISTINCT (battle_id, player_id)) FROM rating_history"
                " WHERE game_id = :g"
            ),
            {"g": game.game_id},
        ).one()
        records = (
            conn.execute(
                text("SELECT DISTINCT battles FROM players WHERE game_id = :g"), {"g": game.game_id}
            )
            .scalars()
            .all()
        )
    assert tuple(rated) == (60, 60)
    assert records == [1]
    got = wait_for(
        "the match results", lambda: len(t := totals(db_engine, game.game_id)) == 60 and t
    )
    assert {row["matches"] for row in got.values()} == {1}


def _resolved(engine: Engine, battle_ids: list) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM battles WHERE battle_id = ANY(:ids) AND status = 'resolved'"
            ),
            {"ids": battle_ids},
        ).scalar_one()


def test_a_malformed_request_lands_in_the_dlq_with_its_reason(stack_settings) -> None:
    tag = uuid.uuid4().hex
    bad = json.dumps({"battle_id": f"not-a-uuid-{tag}", "sides": [["solo"]]}).encode()
    producer = KafkaProducer(bootstrap_servers=stack_settings.kafka_bootstrap, acks="all")
    producer.send(BATTLE_REQUESTS, bad, key=tag.encode()).get(30)
    producer.close()
    [letter] = [
        DeadLetter.model_validate_json(v)
        for v in read_topic(
            stack_settings,
            BATTLE_REQUESTS_DLQ,
            lambda v: tag.encode() in DeadLetter.model_validate_json(v).original_value(),
        )
    ]
    assert letter.source_topic == BATTLE_REQUESTS
    assert "battle.battle_id: Input should be a valid UUID" in letter.reason
    assert "battle.sides: List should have at least 2 items" in letter.reason


def test_player_profiles_and_a_deactivated_player_is_rejected(
    api: httpx.Client, game: GameWithKey
) -> None:
    key = {"X-Api-Key": game.api_key}
    created = api.post(
        "/v1/battles/players", json={"player_id": "joe", "display_name": "Joe"}, headers=key
    )
    assert created.status_code == 201, created.text
    assert created.json()["battles"] == 0 and created.json()["user_id"] is None
    again = api.post(
        "/v1/battles/players", json={"player_id": "joe", "display_name": "J"}, headers=key
    )
    assert again.status_code == 409 and again.json()["code"] == "player_exists"
    renamed = api.patch("/v1/battles/players/joe", json={"display_name": "Joe B"}, headers=key)
    assert renamed.json()["display_name"] == "Joe B"
    assert profile(api, game, "nobody").status_code == 404
    assert (
        api.patch("/v1/battles/players/joe", json={"display_name": ""}, headers=key).status_code
        == 422
    )
    assert api.delete("/v1/battles/players/joe", headers=key).json()["is_active"] is False

    rejected = wait_done(api, game, post_battle(api, game, [["joe"], ["kim"]])["battle_id"])
    assert rejected["status"] == "rejected"
    assert rejected["reason"] == "deactivated players cannot battle: joe"
    assert rejected["rating_changes"] == []


def test_battles_need_the_game_key_and_a_valid_body(api: httpx.Client, game: GameWithKey) -> None:
    assert (
        api.post("/v1/battles", json={"mode": "duel", "sides": [["a"], ["b"]]}).status_code == 401
    )
    key = {"X-Api-Key": game.api_key}
    one_side = api.post("/v1/battles", json={"mode": "duel", "sides": [["a"]]}, headers=key)
    assert one_side.status_code == 422 and "sides" in one_side.text
    twice = api.post("/v1/battles", json={"mode": "duel", "sides": [["a"], ["a"]]}, headers=key)
    assert twice.status_code == 422 and "more than once" in twice.text
    assert api.get(f"/v1/battles/{uuid.uuid4()}", headers=key).status_code == 404


def test_players_queued_through_the_api_are_matched_and_their_battle_resolved(
    api: httpx.Client, game: GameWithKey
) -> None:
    key = {"X-Api-Key": game.api_key}
    tickets = []
    for player in ("liz", "max"):
        response = api.post(
            "/v1/battles/tickets", json={"player_id": player, "mode": "duel"}, headers=key
        )
        assert response.status_code == 201, response.text
        tickets.append(response.json())
    again = api.post("/v1/battles/tickets", json={"player_id": "liz", "mode": "duel"}, headers=key)
    assert again.status_code == 409 and again.json()["code"] == "player_already_waiting"

    match(game.game_id, "duel", once=True)  # `stride battles match GAME duel --once`
    ticket = api.get(f"/v1/battles/tickets/{tickets[0]['ticket_id']}", headers=key).json()
    assert ticket["status"] == "matched"
    resolved = wait_done(api, game, ticket["battle_id"])
    assert resolved["status"] == "resolved"
    assert sorted(p for side in resolved["sides"] for p in side) == ["liz", "max"]


def test_stride_demo_runs_matchmaking_and_battles(live_api: str) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--rate", "20", "--duration", "0.5", "--battles", "3", "--seed", "7"]
    )
    assert result.exit_code == 0, result.output
    assert "3 duels matched, 3 resolved and rated" in result.output
    assert "best battle ratings" in result.output


def test_the_matcher_service_matches_every_game_and_mode(
    api: httpx.Client, game: GameWithKey, stack: Stack, db_engine: Engine
) -> None:
    """`stride up matcher`: one process serves every queue; its battles get resolved; it is
    ready only after a first round, and stops on SIGTERM."""
    key = {"X-Api-Key": game.api_key}
    tickets = {}
    for player, mode in (("nia", "duel"), ("oto", "duel"), ("pia", "ranked"), ("quo", "ranked")):
        response = api.post(
            "/v1/battles/tickets", json={"player_id": player, "mode": mode}, headers=key
        )
        assert response.status_code == 201, response.text
        tickets[player] = response.json()["ticket_id"]
    stack.up(["matcher"], report=lambda _m: None)
    try:
        assert stack.status("matcher").ready
        for player in ("nia", "pia"):

            def matched(p: str = player) -> dict | None:
                found = api.get(f"/v1/battles/tickets/{tickets[p]}", headers=key).json()
                return found if found["status"] == "matched" else None

            ticket = wait_for(f"{player}'s ticket matched", matched)
            resolved = wait_done(api, game, ticket["battle_id"])
            assert resolved["status"] == "resolved" and resolved["mode"] == ticket["mode"]
        with db_engine.connect() as conn:
            battles = conn.execute(
                text("SELECT mode, count(*) FROM battles WHERE game_id = :g GROUP BY mode"),
                {"g": game.game_id},
            ).all()
        assert sorted(battles) == [("duel", 1), ("ranked", 1)]  # each pair matched once
    finally:
        stack.down(["matcher"], report=lambda _m: None)
    assert not stack.status("matcher").running
