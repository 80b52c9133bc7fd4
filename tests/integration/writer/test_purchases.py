"""Burns need the holder: a purchase paid in the token waits in needs_authorization with a
clear reason, the app gets the EIP-2612 typed data, the wallet signs, the writer burns
through the distributor; refusals say what is wrong (real API, anvil, PostgreSQL)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from api.main import create_app
from contracts.deploy import Deployment
from core.identity.app_users import create_app_user
from core.platform.config import Settings, get_settings
from tests.integration.writer.conftest import (
    CHAIN,
    MakeWriter,
    Node,
    on_chain,
    run_until,
    seed_game,
    statuses,
)

E18 = 10**18


@pytest.fixture
def api(
    node: Node,
    deployment: Deployment,
    deployments_dir: Path,
    kafka: Settings,
    db_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    monkeypatch.setenv("STRIDE_WRITER_RPC_URL", node.url)
    monkeypatch.setenv("STRIDE_WRITER_CHAIN_ID", str(CHAIN))
    monkeypatch.setenv("STRIDE_CONTRACT_DEPLOYMENTS_DIR", str(deployments_dir))
    get_settings.cache_clear()
    try:
        with TestClient(create_app()) as client:
            yield client
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def _user_with_wallet(engine: Engine, game_id: str, player: str) -> tuple[str, object]:
    wallet = Account.create()
    user = f"buyer-{secrets.token_hex(4)}"
    with Session(engine) as session, session.begin():
        token = create_app_user(session, user).token
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO user_wallets (address, user_id, is_primary, kind, chain_id) "
                "VALUES (:a, :u, true, 'eoa', :c)"
            ),
            {"a": wallet.address, "u": user, "c": CHAIN},
        )
        conn.execute(
            text("INSERT INTO player_links (game_id, player_id, user_id) VALUES (:g, :p, :u)"),
            {"g": game_id, "p": player, "u": user},
        )
    return token, wallet


def _burn_command(engine: Engine, game_id: str, player: str, amount: str) -> uuid.UUID:
    cid = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO reward_commands (command_id, source_event_id, action, status,
                    game_id, player_id, token, amount, reason, issued_at)
                VALUES (:c, :e, 'burn', 'pending', :g, :p, 'STRIDE', :a, 'purchase:sword', :t)
                """
            ),
            {
                "c": cid,
                "e": uuid.uuid4(),
                "g": game_id,
                "p": player,
                "a": amount,
                "t": datetime.now(UTC),
            },
        )
    return cid


def test_permit_burn_happy_path_and_refusals(
    api: TestClient,
    node: Node,
    deployment: Deployment,
    db_engine: Engine,
    make_writer: MakeWriter,
) -> None:
    writer = make_writer()
    game = seed_game(db_engine, players=1, rewards=0)
    token, wallet = _user_with_wallet(db_engine, game.game_id, "buyer")
    # Earn 10 tokens first (a mint through the writer).
    with db_engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO reward_commands (command_id, source_event_id, action, status,
                    game_id, player_id, token, amount, reason, issued_at)
                VALUES (:c, :e, 'mint', 'pending', :g, 'buyer', 'STRIDE', 10, 'match_won', now())
                """
            ),
            {"c": uuid.uuid4(), "e": uuid.uuid4(), "g": game.game_id},
        )
    burn = _burn_command(db_engine, game.game_id, "buyer", "4")
    too_much = _burn_command(db_engine, game.game_id, "buyer", "100")
    run_until(
        writer,
        lambda: statuses(db_engine, game) == {"confirmed": 1, "needs_authorization": 2},
    )
    me = {"Authorization": f"Bearer {token}"}
    seen = api.get(f"/v1/purchases/{burn}", headers=me)
    assert seen.status_code == 200, seen.text
    assert seen.json()["status"] == "needs_authorization"
    assert f"/v1/purchases/{burn}/intent" in seen.json()["reason"]

    # Refusals before signing: someone else's purchase, not enough tokens.
    other, _ = _user_with_wallet(db_engine, game.game_id, "someone-else")
    stranger = {"Authorization": f"Bearer {other}"}
    assert api.post(f"/v1/purchases/{burn}/intent", headers=stranger).status_code == 404
    assert api.get(f"/v1/purchases/{burn}", headers=stranger).status_code == 404
    poor = api.post(f"/v1/purchases/{too_much}/intent", headers=me)
    assert poor.status_code == 409 and "insufficient balance" in poor.json()["detail"]

    intent = api.post(f"/v1/purchases/{burn}/intent", headers=me)
    assert intent.status_code == 200, intent.text
    typed = intent.json()["typed_data"]
    assert typed["message"]["spender"] == deployment.address("StrideRewardsDistributor")
    assert typed["message"]["value"] == 4 * E18 and typed["domain"]["chainId"] == CHAIN

    def body(signer, **changes):
        signed = Account.sign_typed_data(signer.key, full_message=typed)
        return {
            "owner": wallet.address,
            "nonce": typed["message"]["nonce"],
            "deadline": typed["message"]["deadline"],
            "signature": "0x" + bytes(signed.signature).hex(),
        } | changes

    url = f"/v1/purchases/{burn}/authorization"
    forged = api.post(url, headers=me, json=body(Account.create()))
    assert forged.status_code == 422 and "not by the holder" in forged.json()["detail"]
    expired = api.post(url, headers=me, json=body(wallet, deadline=1))
    assert expired.status_code == 422 and "expired" in expired.json()["detail"]
    stale = api.post(url, headers=me, json=body(wallet, nonce=typed["message"]["nonce"] + 1))
    assert stale.status_code == 422 and "nonce" in stale.json()["detail"]
    not_mine = api.post(url, headers=me, json=body(wallet, owner=Account.create().address))
    assert not_mine.status_code == 422 and "not one of your wallets" in not_mine.json()["detail"]
    assert api.post(url, headers=me, json={"owner": "x"}).status_code == 422

    accepted = api.post(url, headers=me, json=body(wallet))
    assert accepted.status_code == 202, accepted.text
    run_until(writer, lambda: statuses(db_engine, game).get("confirmed") == 2)
    assert on_chain(node, deployment, [wallet.address]) == {wallet.address: 6 * E18}
    done = api.get(f"/v1/purchases/{burn}", headers=me).json()
    assert done["status"] == "confirmed" and done["tx_hash"] and done["wallet"] == wallet.address
    again = api.post(f"/v1/purchases/{burn}/intent", headers=me)
    assert again.status_code == 409  # nothing left to authorize
