"""A pack paid in the game token is held until its burn is on chain: bought through the
API (held, stock reserved, nothing in the inventory), permit signed with a local key through
the API, burned by the real writer on anvil, then the items granted exactly once; a burn
that fails on chain or is never authorized releases the stock; replays change nothing
(real API, writer, anvil, PostgreSQL)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from api.main import create_app
from contracts.deploy import Deployment
from core.content import inventory
from core.identity.app_users import create_app_user
from core.platform.config import Settings, get_settings
from core.rewards import store
from tests.integration.content.conftest import make_item, make_pack
from tests.integration.writer.conftest import (
    CHAIN,
    MakeWriter,
    Node,
    on_chain,
    run_until,
    seed_game,
)

pytestmark = pytest.mark.integration
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


def _buyer(engine: Engine, game_id: str, player: str) -> tuple[dict[str, str], LocalAccount]:
    """An app user (bearer headers) with a primary wallet, linked to ``player``."""
    wallet = Account.create()
    user = f"payer-{secrets.token_hex(4)}"
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
    return {"Authorization": f"Bearer {token}"}, wallet


def _earn(engine: Engine, game_id: str, player: str, amount: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO reward_commands (command_id, source_event_id, action, status,
                    game_id, player_id, token, amount, reason, issued_at)
                VALUES (:c, :e, 'mint', 'pending', :g, :p, 'STRIDE', :a, 'match_won', now())
                """
            ),
            {"c": uuid.uuid4(), "e": uuid.uuid4(), "g": game_id, "p": player, "a": amount},
        )


def _status(engine: Engine, command_id: str) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT status FROM reward_commands WHERE command_id = :c"),
                {"c": command_id},
            ).scalar_one()
        )


def _waiting_for_permit(engine: Engine, game_id: str) -> bool:
    """The buyer's earnings are minted and the burn waits for the holder's permit."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT action, status FROM reward_commands WHERE game_id = :g"), {"g": game_id}
        ).all()
    return sorted(rows) == [("burn", "needs_authorization"), ("mint", "confirmed")]


def _held_units(engine: Engine, game_id: str) -> tuple[int, int, int]:
    """(units in inventories, ledger rows, the pack's stock sold) of the game."""
    with engine.connect() as conn:
        units = conn.execute(
            text("SELECT coalesce(sum(quantity), 0) FROM inventory_items WHERE game_id = :g"),
            {"g": game_id},
        ).scalar_one()
        entries = conn.execute(
            text("SELECT count(*) FROM inventory_ledger WHERE game_id = :g"), {"g": game_id}
        ).scalar_one()
        sold = conn.execute(
            text("SELECT stock_sold FROM catalog_packs WHERE game_id = :g"), {"g": game_id}
        ).scalar_one()
    return int(units), int(entries), int(sold)


def _buy(api: TestClient, me: dict[str, str], game_id: str, key: str, pack: str = "crate") -> Any:
    return api.post(
        f"/v2/catalog/packs/{pack}/purchase",
        headers={**me, "Idempotency-Key": key},
        json={"game_id": game_id},
    )


def _sign(api: TestClient, me: dict[str, str], wallet: LocalAccount, command_id: str) -> Any:
    intent = api.post(f"/v1/purchases/{command_id}/intent", headers=me)
    assert intent.status_code == 200, intent.text
    typed = intent.json()["typed_data"]
    signed = Account.sign_typed_data(wallet.key, full_message=typed)
    return api.post(
        f"/v1/purchases/{command_id}/authorization",
        headers=me,
        json={
            "owner": wallet.address,
            "nonce": typed["message"]["nonce"],
            "deadline": typed["message"]["deadline"],
            "signature": "0x" + bytes(signed.signature).hex(),
        },
    )


def _shop(engine: Engine) -> str:
    game = seed_game(engine, players=1, rewards=0)
    make_item(engine, game.game_id, "gem")
    make_pack(
        engine, game.game_id, "crate", {"gem": 3}, price="4", currency="STRIDE", stock_total=1
    )
    return game.game_id


def test_a_token_priced_pack_is_held_then_granted_once_its_burn_is_confirmed(
    api: TestClient, node: Node, deployment: Deployment, db_engine: Engine, make_writer: MakeWriter
) -> None:
    writer = make_writer()
    game_id = _shop(db_engine)
    me, wallet = _buyer(db_engine, game_id, "hero")
    _earn(db_engine, game_id, "hero", 10)

    bought = _buy(api, me, game_id, "crate-key-1")
    assert bought.status_code == 201, bought.text
    grant = bought.json()
    burn = grant["burn_command_id"]
    assert grant["payment_state"] == "awaiting_payment"
    assert grant["authorize_url"] == f"/v1/purchases/{burn}/intent"
    assert grant["items"] == [{"item_id": "gem", "quantity": 3}]  # what it will grant
    assert _held_units(db_engine, game_id) == (0, 0, 1)  # held: stock reserved, nothing owned
    others, _ = _buyer(db_engine, game_id, "rival")
    assert _buy(api, others, game_id, "rival-key-1").json()["code"] == "sold_out"
    v1 = api.post(
        "/v1/catalog/packs/crate/purchase",
        headers={**me, "Idempotency-Key": "crate-key-1"},
        json={"game_id": game_id},
    )
    assert v1.status_code == 200 and v1.json()["payment_state"] == "awaiting_payment"
    assert v1.json()["authorize_url"] == grant["authorize_url"]

    run_until(writer, lambda: _waiting_for_permit(db_engine, game_id))
    assert _held_units(db_engine, game_id) == (0, 0, 1)
    assert _sign(api, me, wallet, burn).status_code == 202
    run_until(writer, lambda: _status(db_engine, burn) == "confirmed")

    assert on_chain(node, deployment, [wallet.address]) == {wallet.address: 6 * E18}
    assert _held_units(db_engine, game_id) == (3, 1, 1)
    paid = _buy(api, me, game_id, "crate-key-1").json()  # the same key: the same grant
    assert paid["payment_state"] == "paid" and paid["authorize_url"] is None
    assert paid["burn_status"] == "confirmed" and paid["grant_id"] == grant["grant_id"]
    stacks = api.get("/v1/inventory", headers=me, params={"game_id": game_id}).json()["items"]
    assert [(s["item_id"], s["quantity"]) for s in stacks] == [("gem", 3)]
    mine = api.get("/v1/inventory/grants", headers=me, params={"game_id": game_id}).json()
    assert [g["payment_state"] for g in mine["grants"]] == ["paid"]

    # Replays of the confirmation (the hook, the writer's finish, more passes) change nothing.
    with db_engine.begin() as conn:
        assert inventory.settle_burns(conn, [uuid.UUID(burn)], datetime.now(UTC)) == 0
    with db_engine.connect() as conn:
        tx_id = conn.execute(
            text("SELECT chain_tx_id FROM reward_executions WHERE command_id = :c"), {"c": burn}
        ).scalar_one()
    store.finish_tx(db_engine, tx_id, confirmed=True)
    writer.step()
    assert _held_units(db_engine, game_id) == (3, 1, 1)


def test_a_burn_that_fails_on_chain_releases_the_stock(
    api: TestClient, node: Node, deployment: Deployment, db_engine: Engine, make_writer: MakeWriter
) -> None:
    writer = make_writer()
    game_id = _shop(db_engine)
    me, wallet = _buyer(db_engine, game_id, "hero")
    _earn(db_engine, game_id, "hero", 10)
    burn = _buy(api, me, game_id, "crate-key-1").json()["burn_command_id"]
    run_until(writer, lambda: _waiting_for_permit(db_engine, game_id))
    assert _sign(api, me, wallet, burn).status_code == 202
    # The chain's clock passes the permit's deadline before the writer sends the burn.
    deadline = int(datetime.now(UTC).timestamp()) + get_settings().writer_permit_ttl_s
    node.rpc("evm_setNextBlockTimestamp", [deadline + 60])
    run_until(writer, lambda: _status(db_engine, burn) == "failed")

    failed = _buy(api, me, game_id, "crate-key-1").json()
    assert failed["payment_state"] == "payment_failed"
    assert failed["payment_reason"].startswith("the burn failed: ")
    assert "no reason recorded" not in failed["payment_reason"]  # the writer's decoded one
    assert on_chain(node, deployment, [wallet.address]) == {wallet.address: 10 * E18}
    assert _held_units(db_engine, game_id) == (0, 0, 0)  # nothing granted, stock released
    others, _ = _buyer(db_engine, game_id, "rival")
    assert _buy(api, others, game_id, "rival-key-1").status_code == 201  # the unit is on sale again
    with db_engine.begin() as conn:  # a replayed failure changes nothing
        assert inventory.settle_burns(conn, [uuid.UUID(burn)], datetime.now(UTC)) == 0
    assert _held_units(db_engine, game_id) == (0, 0, 1)


def test_a_burn_not_authorized_by_the_deadline_is_released_and_never_sent(
    api: TestClient, db_engine: Engine, make_writer: MakeWriter
) -> None:
    writer = make_writer()
    game_id = _shop(db_engine)
    me, _ = _buyer(db_engine, game_id, "hero")
    _earn(db_engine, game_id, "hero", 10)
    grant = _buy(api, me, game_id, "crate-key-1").json()
    burn = grant["burn_command_id"]
    run_until(writer, lambda: _waiting_for_permit(db_engine, game_id))
    due = datetime.fromisoformat(grant["payment_due_at"])
    with Session(db_engine) as session, session.begin():  # not yet due: nothing happens
        assert inventory.expire_unpaid(session, due - timedelta(seconds=1), game_id=game_id) == 0
    with Session(db_engine) as session, session.begin():
        assert inventory.expire_unpaid(session, due, game_id=game_id) == 1
    with Session(db_engine) as session, session.begin():  # a second sweep: nothing left
        assert inventory.expire_unpaid(session, due, game_id=game_id) == 0

    released = _buy(api, me, game_id, "crate-key-1").json()
    assert released["payment_state"] == "payment_failed"
    assert "not authorized within 1800 s" in released["payment_reason"]
    assert _status(db_engine, burn) == "failed"
    assert api.post(f"/v1/purchases/{burn}/intent", headers=me).status_code == 409
    writer.step()
    assert _status(db_engine, burn) == "failed"  # the writer never sends it
    assert _held_units(db_engine, game_id) == (0, 0, 0)


def test_a_permit_bound_to_revert_is_refused_before_the_writer_pays_gas_for_it(
    api: TestClient, node: Node, deployment: Deployment, db_engine: Engine, make_writer: MakeWriter
) -> None:
    """The platform's sender pays each burn's gas: a permit from a linked wallet that holds
    too little, the same permit for a second purchase, and a deadline the table cannot hold
    are refused at the door, and no burn is sent for them (each used to be a reverted,
    paid-for transaction, or a 500)."""
    writer = make_writer()
    game_id = _shop(db_engine)
    make_pack(db_engine, game_id, "crate2", {"gem": 1}, price="4", currency="STRIDE")
    me, wallet = _buyer(db_engine, game_id, "hero")
    empty = Account.create()
    with db_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO user_wallets (address, user_id, is_primary, kind, chain_id)"
                " SELECT :a, user_id, false, 'eoa', chain_id FROM user_wallets WHERE address = :w"
            ),
            {"a": empty.address, "w": wallet.address},
        )
    _earn(db_engine, game_id, "hero", 10)
    burn = _buy(api, me, game_id, "crate-key-1").json()["burn_command_id"]
    second = _buy(api, me, game_id, "crate2-key-1", "crate2").json()["burn_command_id"]
    run_until(
        writer,
        lambda: _status(db_engine, burn) == _status(db_engine, second) == "needs_authorization",
    )
    typed = api.post(f"/v1/purchases/{burn}/intent", headers=me).json()["typed_data"]

    def post(command_id: str, signer: LocalAccount, **changes: Any) -> Any:
        message = {**typed["message"], "owner": signer.address, **changes}
        signed = Account.sign_typed_data(signer.key, full_message={**typed, "message": message})
        return api.post(
            f"/v1/purchases/{command_id}/authorization",
            headers=me,
            json={
                "owner": signer.address,
                "nonce": message["nonce"],
                "deadline": message["deadline"],
                "signature": "0x" + bytes(signed.signature).hex(),
            },
        )

    broke = post(burn, empty)
    assert broke.status_code == 422
    assert broke.json()["detail"] == (
        f"owner: wallet {empty.address} holds 0 wei of the token, the purchase costs"
        f" {4 * E18} wei; pay from a wallet that holds enough"
    )
    far = post(burn, wallet, deadline=2**63)
    assert far.status_code == 422 and far.json()["detail"].startswith("deadline: ")
    assert post(burn, wallet).status_code == 202
    again = post(second, wallet)  # the same permit (owner, nonce) for the other purchase
    assert again.status_code == 409
    assert f"already authorizes purchase {burn}" in again.json()["detail"]

    # The first one is sent (confirmed, or failed if an earlier test moved the chain's clock
    # past the permit's deadline); the second purchase never had a burn sent.
    run_until(writer, lambda: _status(db_engine, burn) in ("confirmed", "failed"))
    with db_engine.connect() as conn:
        sent = dict(
            conn.execute(
                text(
                    "SELECT c, count(t.id) FROM unnest(CAST(:ids AS uuid[])) AS c"
                    " LEFT JOIN chain_txs t ON t.kind = 'burn' AND c = ANY(t.command_ids)"
                    " GROUP BY c"
                ),
                {"ids": [burn, second]},
            )
            .tuples()
            .all()
        )
    assert (sent[uuid.UUID(burn)], sent[uuid.UUID(second)]) == (1, 0)
    assert _status(db_engine, second) == "needs_authorization"
