"""A paid grant whose items could not be granted is refunded on chain, once: bought through
the API in the game token, the item meanwhile bought in another currency (so the paid one
no longer fits), burned by the real writer on anvil (``refund_due``), then the sweeper's
refunds pass issues the mint and the writer's confirmation ends it ``refunded`` with the
tokens back in the wallet; replayed passes mint nothing more (real API, writer, anvil,
PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from cli.sweeper import SWEEPS, SweepName, run_pass
from contracts.deploy import Deployment
from core.content.inventory import refund_command_id
from core.platform.config import get_settings
from tests.integration.content.conftest import make_item, make_pack
from tests.integration.writer.conftest import (
    CHAIN,
    MakeWriter,
    Node,
    on_chain,
    run_until,
    seed_game,
)
from tests.integration.writer.test_paid_packs import (  # the paid packs' API and helpers
    E18,
    _buyer,
    _earn,
    _sign,
    _status,
    api,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.integration


def _crown_shop(
    client: TestClient, engine: Engine
) -> tuple[str, dict[str, str], LocalAccount, Callable[[str, str], dict]]:
    """A game selling one non-stackable crown for 4 tokens (``crown``) or in another
    currency (``crown-usd``), a buyer who earned 10 tokens, and how they buy a pack."""
    game_id = seed_game(engine, players=1, rewards=0).game_id
    make_item(engine, game_id, "crown", stackable=False)
    make_pack(engine, game_id, "crown", {"crown": 1}, price="4", currency="STRIDE")
    make_pack(engine, game_id, "crown-usd", {"crown": 1})
    me, wallet = _buyer(engine, game_id, "hero")
    _earn(engine, game_id, "hero", 10)

    def buy(pack: str, key: str) -> dict:
        response = client.post(
            f"/v2/catalog/packs/{pack}/purchase",
            headers={**me, "Idempotency-Key": key},
            json={"game_id": game_id},
        )
        assert response.status_code in (200, 201), response.text
        return response.json()

    return game_id, me, wallet, buy


def test_a_paid_grant_that_no_longer_fits_is_refunded_on_chain_once(
    api: TestClient,  # noqa: F811 - the fixture imported above
    node: Node,
    deployment: Deployment,
    db_engine: Engine,
    make_writer: MakeWriter,
) -> None:
    writer = make_writer()
    game_id, me, wallet, buy = _crown_shop(api, db_engine)

    held = buy("crown", "crown-token")
    burn = held["burn_command_id"]
    assert held["payment_state"] == "awaiting_payment"
    assert buy("crown-usd", "crown-usd")["payment_state"] is None  # owned now, at its max
    run_until(writer, lambda: _status(db_engine, burn) == "needs_authorization")
    assert _sign(api, me, wallet, burn).status_code == 202
    run_until(writer, lambda: _status(db_engine, burn) == "confirmed")
    owed = buy("crown", "crown-token")
    assert owed["payment_state"] == "refund_due"
    assert on_chain(node, deployment, [wallet.address]) == {wallet.address: 6 * E18}

    refunds = SWEEPS[SweepName.refunds]
    assert run_pass(db_engine, get_settings(), refunds).rows >= 1
    refunding = buy("crown", "crown-token")
    refund = str(refund_command_id(game_id, uuid.UUID(refunding["grant_id"])))
    assert (refunding["payment_state"], refunding["refund_command_id"]) == ("refunding", refund)
    run_until(writer, lambda: _status(db_engine, refund) == "confirmed")

    refunded = buy("crown", "crown-token")
    assert (refunded["payment_state"], refunded["refund_status"]) == ("refunded", "confirmed")
    assert on_chain(node, deployment, [wallet.address]) == {wallet.address: 10 * E18}
    run_pass(db_engine, get_settings(), refunds)  # replayed: nothing owed, nothing minted
    writer.step()
    assert on_chain(node, deployment, [wallet.address]) == {wallet.address: 10 * E18}
    assert buy("crown", "crown-token")["payment_state"] == "refunded"


def test_a_refund_goes_back_to_the_wallet_that_paid_not_the_primary_one(
    api: TestClient,  # noqa: F811 - the fixture imported above
    node: Node,
    deployment: Deployment,
    db_engine: Engine,
    make_writer: MakeWriter,
) -> None:
    """The buyer's earnings are minted to wallet A, A signs the burn, then the user makes a
    new wallet B primary: the refund mint goes back to A, which paid (with the primary
    wallet taken for every mint, B would get it)."""
    writer = make_writer()
    _game_id, me, payer, buy = _crown_shop(api, db_engine)

    burn = buy("crown", "crown-token")["burn_command_id"]
    assert buy("crown-usd", "crown-usd")["payment_state"] is None  # owned now, at its max
    run_until(writer, lambda: _status(db_engine, burn) == "needs_authorization")
    assert _sign(api, me, payer, burn).status_code == 202
    run_until(writer, lambda: _status(db_engine, burn) == "confirmed")
    assert buy("crown", "crown-token")["payment_state"] == "refund_due"

    primary = Account.create()
    with db_engine.begin() as conn:
        user = conn.execute(
            text("SELECT user_id FROM user_wallets WHERE address = :a"), {"a": payer.address}
        ).scalar_one()
        conn.execute(
            text("UPDATE user_wallets SET is_primary = false WHERE user_id = :u"), {"u": user}
        )
        conn.execute(
            text(
                "INSERT INTO user_wallets (address, user_id, is_primary, kind, chain_id) "
                "VALUES (:a, :u, true, 'eoa', :c)"
            ),
            {"a": primary.address, "u": user, "c": CHAIN},
        )
    assert run_pass(db_engine, get_settings(), SWEEPS[SweepName.refunds]).rows >= 1
    refund = buy("crown", "crown-token")["refund_command_id"]
    run_until(writer, lambda: _status(db_engine, refund) == "confirmed")

    assert buy("crown", "crown-token")["payment_state"] == "refunded"
    balances = on_chain(node, deployment, [payer.address, primary.address])
    assert balances.get(payer.address) == 10 * E18  # 6 left after the burn, 4 back
    assert balances.get(primary.address, 0) == 0
    with db_engine.connect() as conn:
        recipient = conn.execute(
            text("SELECT recipient FROM reward_executions WHERE command_id = :c"), {"c": refund}
        ).scalar_one()
    assert recipient == payer.address
