"""Purchases on the real PostgreSQL, from many threads at once: an idempotency key grants
once, stock and max count hold under concurrency, a token price burns once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from threading import Barrier

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.content import inventory
from core.content.inventory import PurchaseRequest
from core.identity.models import PlayerLink
from core.platform.errors import DomainError
from tests.integration.content.conftest import Economy, User, make_item, make_pack

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def buy(engine: Engine, request: PurchaseRequest, token: str = "STRIDE") -> tuple[str, bool] | str:
    """The grant id and whether it is new, or the refusal's code."""
    try:
        with Session(engine) as session, session.begin():
            grant, created = inventory.purchase(session, request, token=token, now=NOW)
            return str(grant.grant_id), created
    except DomainError as refusal:
        return refusal.code


def all_at_once(n: int, work: Callable[[int], object]) -> list[object]:
    """``work(i)`` in n threads released together by a barrier."""
    barrier = Barrier(n)

    def run(i: int) -> object:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def count(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def test_fifty_concurrent_duplicates_grant_exactly_once(
    db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    make_item(db_engine, economy.game_id, "gem")
    make_pack(db_engine, economy.game_id, "gems", {"gem": 10}, stock_total=100)
    buyer = new_user()
    request = PurchaseRequest(economy.game_id, "gems", buyer.user_id, f"k-{uuid.uuid4()}")

    results = all_at_once(50, lambda _i: buy(db_engine, request))

    grants = {r[0] for r in results if isinstance(r, tuple)}
    assert len(grants) == 1, results
    assert sum(1 for r in results if isinstance(r, tuple) and r[1]) == 1  # one says "new"
    g = economy.game_id
    assert count(db_engine, "SELECT count(*) FROM grants WHERE game_id = :g", g=g) == 1
    assert count(db_engine, "SELECT quantity FROM inventory_items WHERE game_id = :g", g=g) == 10
    assert count(db_engine, "SELECT stock_sold FROM catalog_packs WHERE game_id = :g", g=g) == 1


def test_stock_of_ten_and_thirty_buyers_sells_ten(
    db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    make_item(db_engine, economy.game_id, "crown", stackable=False)
    make_pack(db_engine, economy.game_id, "crowns", {"crown": 1}, stock_total=10)
    buyers = [new_user() for _ in range(30)]

    results = all_at_once(
        30,
        lambda i: buy(
            db_engine, PurchaseRequest(economy.game_id, "crowns", buyers[i].user_id, f"k-{i}-x")
        ),
    )

    assert sum(isinstance(r, tuple) for r in results) == 10
    assert sorted(r for r in results if isinstance(r, str)) == ["sold_out"] * 20
    g = economy.game_id
    assert count(db_engine, "SELECT stock_sold FROM catalog_packs WHERE game_id = :g", g=g) == 10
    assert count(db_engine, "SELECT count(*) FROM inventory_items WHERE game_id = :g", g=g) == 10


def test_max_count_holds_under_concurrent_purchases_of_one_player(
    db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    make_item(db_engine, economy.game_id, "potion", max_count=3, consumable=True)
    make_pack(db_engine, economy.game_id, "potion", {"potion": 1})
    buyer = new_user()

    results = all_at_once(
        12,
        lambda i: buy(
            db_engine, PurchaseRequest(economy.game_id, "potion", buyer.user_id, f"key-{i}-p")
        ),
    )

    assert sum(isinstance(r, tuple) for r in results) == 3
    assert sorted(r for r in results if isinstance(r, str)) == ["max_count_reached"] * 9
    assert (
        count(
            db_engine,
            "SELECT sum(quantity) FROM inventory_items WHERE game_id = :g AND owner_id = :u",
            g=economy.game_id,
            u=buyer.user_id,
        )
        == 3
    )


def test_window_gift_and_reused_key_are_refused_with_their_codes(
    db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    make_item(db_engine, economy.game_id, "hat")
    later = NOW + timedelta(days=1)
    make_pack(db_engine, economy.game_id, "soon", {"hat": 1}, starts_at=later)
    make_pack(db_engine, economy.game_id, "solo", {"hat": 1}, giftable=False)
    make_pack(db_engine, economy.game_id, "hats", {"hat": 2})
    a, b = new_user(), new_user()
    g = economy.game_id

    assert buy(db_engine, PurchaseRequest(g, "soon", a.user_id, "key-soon-1")) == "not_on_sale"
    assert buy(db_engine, PurchaseRequest(g, "solo", a.user_id, "key-solo-1", b.user_id)) == (
        "not_giftable"
    )
    gift = buy(db_engine, PurchaseRequest(g, "hats", a.user_id, "key-hats-1", b.user_id))
    assert isinstance(gift, tuple) and gift[1]
    # The same key for another request is refused; for the same request it is the same grant.
    assert buy(db_engine, PurchaseRequest(g, "hats", a.user_id, "key-hats-1")) == (
        "idempotency_key_reused"
    )
    assert buy(db_engine, PurchaseRequest(g, "hats", a.user_id, "key-hats-1", b.user_id)) == (
        gift[0],
        False,
    )
    with Session(db_engine) as session:
        stacks = inventory.inventory_of(session, g, b.user_id)
    assert [(s.owner_id, s.unlocked_by, s.quantity) for s in stacks] == [
        (b.user_id, a.user_id, 2)  # owner and unlocker: bought by a for b
    ]


def test_a_token_price_burns_once_from_the_buyers_player(
    db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    make_item(db_engine, economy.game_id, "skin", stackable=False)
    make_pack(db_engine, economy.game_id, "skin", {"skin": 1}, price="12.5", currency="STRIDE")
    buyer = new_user()
    g = economy.game_id
    request = PurchaseRequest(g, "skin", buyer.user_id, "key-skin-burn")
    assert buy(db_engine, request) == "no_linked_player"
    with Session(db_engine) as session, session.begin():
        session.add(PlayerLink(game_id=g, player_id="hero-1", user_id=buyer.user_id))

    results = all_at_once(8, lambda _i: buy(db_engine, request))

    assert len({r[0] for r in results if isinstance(r, tuple)}) == 1
    with db_engine.connect() as conn:
        burns = conn.execute(
            text(
                "SELECT action, status, player_id, amount FROM reward_commands WHERE game_id = :g"
            ),
            {"g": g},
        ).all()
    assert [(a, s, p, str(amt)) for a, s, p, amt in burns] == [
        ("burn", "pending", "hero-1", "12.500000000000000000")
    ]
