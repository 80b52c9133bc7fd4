"""Held purchases on the real PostgreSQL, without a chain: the confirmation hook settles a
grant once under concurrent duplicates, a hold refuses upfront what would not fit, and a
paid grant whose items no longer fit becomes refund_due instead of failing the writer's
transaction. (The whole flow through the real writer on anvil: tests/integration/writer/
test_paid_packs.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.content import inventory
from core.content.catalog_models import Grant, PaymentState
from core.content.inventory import PurchaseRequest
from core.identity.models import PlayerLink
from core.platform.errors import DomainError
from tests.integration.content.conftest import Economy, User, make_item, make_pack
from tests.integration.content.test_purchases import all_at_once, buy, count

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


def _linked(engine: Engine, economy: Economy, user: User) -> None:
    with Session(engine) as session, session.begin():
        session.add(
            PlayerLink(game_id=economy.game_id, player_id=user.user_id, user_id=user.user_id)
        )


def _grant(engine: Engine, grant_id: str) -> Grant:
    with Session(engine) as session:
        grant = session.get(Grant, uuid.UUID(grant_id))
        assert grant is not None
        session.expunge(grant)
        return grant


def _burn_confirmed(engine: Engine, grant: Grant) -> None:
    """What the writer's confirmation statement does to the burn before its hook runs."""
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE reward_commands SET status = 'confirmed' WHERE command_id = :c"),
            {"c": grant.reward_command_id},
        )


def _settle(engine: Engine, grant: Grant) -> int:
    with engine.begin() as conn:
        return inventory.settle_burns(conn, [grant.reward_command_id], NOW)  # type: ignore[list-item]


def test_concurrent_confirmations_grant_the_items_once(
    db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    make_item(db_engine, economy.game_id, "gem")
    make_pack(db_engine, economy.game_id, "gems", {"gem": 5}, price="3", currency="STRIDE")
    buyer = new_user()
    _linked(db_engine, economy, buyer)
    request = PurchaseRequest(economy.game_id, "gems", buyer.user_id, "key-gems-paid")
    results = all_at_once(8, lambda _i: buy(db_engine, request))
    grant_ids = {r[0] for r in results if isinstance(r, tuple)}
    assert len(grant_ids) == 1
    grant = _grant(db_engine, grant_ids.pop())
    assert grant.payment_state is PaymentState.awaiting_payment
    units = "SELECT coalesce(sum(quantity), 0) FROM inventory_items WHERE game_id = :g"
    assert count(db_engine, units, g=economy.game_id) == 0
    assert _settle(db_engine, grant) == 0  # the burn is not confirmed yet: still held

    _burn_confirmed(db_engine, grant)
    settled = all_at_once(6, lambda _i: _settle(db_engine, grant))

    assert sorted(settled) == [0, 0, 0, 0, 0, 1]
    assert count(db_engine, units, g=economy.game_id) == 5
    assert _grant(db_engine, str(grant.grant_id)).payment_state is PaymentState.paid


def test_a_hold_refuses_what_would_not_fit_and_a_paid_grant_that_no_longer_fits_is_owed(
    db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    make_item(db_engine, economy.game_id, "crown", stackable=False)
    make_pack(db_engine, economy.game_id, "crown", {"crown": 1}, price="3", currency="STRIDE")
    make_pack(db_engine, economy.game_id, "crown-usd", {"crown": 1}, stock_total=5)
    buyer = new_user()
    _linked(db_engine, economy, buyer)
    g = economy.game_id
    held = buy(db_engine, PurchaseRequest(g, "crown", buyer.user_id, "key-crown-token"))
    assert isinstance(held, tuple)
    # Bought again in another currency while the first is held: granted at once.
    assert isinstance(
        buy(db_engine, PurchaseRequest(g, "crown-usd", buyer.user_id, "key-usd")), tuple
    )
    # A second hold for an item they now own at its max is refused upfront.
    again = buy(db_engine, PurchaseRequest(g, "crown", buyer.user_id, "key-crown-again"))
    assert again == "max_count_reached"

    grant = _grant(db_engine, held[0])
    _burn_confirmed(db_engine, grant)
    assert _settle(db_engine, grant) == 1  # the hook never raises: the writer must commit
    owed = _grant(db_engine, held[0])
    assert owed.payment_state is PaymentState.refund_due
    assert owed.payment_reason is not None and "at most 1 of 'crown'" in owed.payment_reason
    assert count(db_engine, "SELECT count(*) FROM inventory_items WHERE game_id = :g", g=g) == 1


def test_a_sold_out_pack_takes_back_the_units_of_holds_past_their_deadline(
    db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    g = economy.game_id
    make_item(db_engine, g, "relic")
    make_pack(db_engine, g, "relic", {"relic": 1}, price="3", currency="STRIDE", stock_total=1)
    first, second = new_user(), new_user()
    _linked(db_engine, economy, first)
    _linked(db_engine, economy, second)

    def purchase(user: User, key: str, at: datetime) -> str:
        try:
            with Session(db_engine) as session, session.begin():
                grant, _ = inventory.purchase(
                    session,
                    PurchaseRequest(g, "relic", user.user_id, key),
                    token="STRIDE",
                    now=at,
                    payment_timeout_s=600,
                )
                return str(grant.grant_id)
        except DomainError as refusal:
            return refusal.code

    held = purchase(first, "key-relic-first", NOW)
    assert purchase(second, "key-relic-early", NOW + timedelta(seconds=599)) == "sold_out"
    later = purchase(second, "key-relic-late", NOW + timedelta(seconds=600))

    assert later not in ("sold_out", held)
    lapsed = _grant(db_engine, held)
    assert lapsed.payment_state is PaymentState.payment_failed
    assert lapsed.payment_reason == "the burn was not authorized within 600 s of the purchase"
    burn = "SELECT status FROM reward_commands WHERE command_id = :c"
    with db_engine.connect() as conn:
        assert conn.execute(text(burn), {"c": lapsed.reward_command_id}).scalar_one() == "failed"
    sold = "SELECT stock_sold FROM catalog_packs WHERE game_id = :g"
    assert count(db_engine, sold, g=g) == 1  # the late buyer's hold
