"""What the sweeper tests set up through the real domain functions: holds past their
deadline, gifts past their expiry, paid grants owed a refund; and the wait for a row to
change (a poll of the row itself, with a deadline, never a fixed sleep)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.content import gifts, inventory
from core.content.catalog_models import Grant, PaymentState
from core.content.gifts import GiftOffer
from core.content.inventory import PurchaseRequest
from core.identity.models import PlayerLink
from tests.integration.content.conftest import Economy, User, make_item, make_pack

PAST = datetime.now(UTC) - timedelta(hours=2)  # everything made "then" is due now
T = TypeVar("T")


def wait_for(probe: Callable[[], T], what: str, timeout_s: float = 30.0) -> T:
    """``probe()`` once it is truthy (polled every 50 ms), else fail saying ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.05)  # polling a row the sweeper process changes: there is no event


def scalar(engine: Engine, sql: str, **params: object) -> object:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def link(engine: Engine, economy: Economy, user: User) -> None:
    with Session(engine) as session, session.begin():
        session.add(
            PlayerLink(game_id=economy.game_id, player_id=user.user_id, user_id=user.user_id)
        )


def grant_of(engine: Engine, grant_id: uuid.UUID) -> Grant:
    with Session(engine) as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None
        session.expunge(grant)
        return grant


def held_purchases(
    engine: Engine, economy: Economy, buyer: User, pack_id: str, n: int, *, stock: int
) -> list[uuid.UUID]:
    """``n`` purchases of a pack paid in the token, held since two hours ago with a 60 s
    deadline: all past due, their burns never authorized."""
    make_item(engine, economy.game_id, f"{pack_id}-item")
    make_pack(
        engine,
        economy.game_id,
        pack_id,
        {f"{pack_id}-item": 1},
        price="3",
        currency="STRIDE",
        stock_total=stock,
    )
    ids = []
    for i in range(n):
        with Session(engine) as session, session.begin():
            grant, _ = inventory.purchase(
                session,
                PurchaseRequest(economy.game_id, pack_id, buyer.user_id, f"hold-{pack_id}-{i}"),
                token="STRIDE",
                now=PAST,
                payment_timeout_s=60,
            )
            assert grant.payment_state is PaymentState.awaiting_payment
            ids.append(grant.grant_id)
    return ids


def expired_gifts(
    engine: Engine, economy: Economy, sender: User, recipient: User, item_id: str, n: int
) -> list[uuid.UUID]:
    """The sender owns ``n`` units of a giftable item and offered each in its own gift two
    hours ago for a minute: every unit is in an escrow past its expiry."""
    g = economy.game_id
    make_item(engine, g, item_id)
    make_pack(engine, g, f"{item_id}-pack", {item_id: n})
    with Session(engine) as session, session.begin():
        inventory.purchase(
            session,
            PurchaseRequest(g, f"{item_id}-pack", sender.user_id, f"buy-{item_id}"),
            token="STRIDE",
            now=PAST,
        )  # priced in USD: granted at once
    ids = []
    for i in range(n):
        offer = GiftOffer(g, sender.user_id, recipient.user_id, item_id, 1, f"gift-{item_id}-{i}")
        with Session(engine) as session, session.begin():
            gift, _ = gifts.offer(session, offer, ttl=timedelta(seconds=60), now=PAST)
            ids.append(gift.gift_id)
    return ids


def owed_refund(engine: Engine, economy: Economy, buyer: User, item_id: str) -> uuid.UUID:
    """A paid grant whose items no longer fit (``refund_due``): a held purchase of a
    one-per-player item, the item bought meanwhile in another currency, then the burn
    confirmed by the writer's hook."""
    g = economy.game_id
    make_item(engine, g, item_id, stackable=False)
    make_pack(engine, g, item_id, {item_id: 1}, price="3", currency="STRIDE")
    make_pack(engine, g, f"{item_id}-usd", {item_id: 1})
    with Session(engine) as session, session.begin():
        held, _ = inventory.purchase(
            session,
            PurchaseRequest(g, item_id, buyer.user_id, f"owed-{item_id}"),
            token="STRIDE",
            now=datetime.now(UTC),  # not overdue: its burn is confirmed, not released
        )
        grant_id, burn_id = held.grant_id, held.reward_command_id
        inventory.purchase(
            session,
            PurchaseRequest(g, f"{item_id}-usd", buyer.user_id, f"usd-{item_id}"),
            token="STRIDE",
            now=datetime.now(UTC),
        )
    confirm(engine, burn_id)
    assert grant_of(engine, grant_id).payment_state is PaymentState.refund_due
    return grant_id


def confirm(engine: Engine, command_id: uuid.UUID | None) -> None:
    """What the writer's confirmation transaction does: the command confirmed, then the
    content hook in the same commit (core/rewards/store.py ``_finish_commands``)."""
    assert command_id is not None
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE reward_commands SET status = 'confirmed' WHERE command_id = :c"),
            {"c": command_id},
        )
        inventory.settle_burns(conn, [command_id], datetime.now(UTC))
