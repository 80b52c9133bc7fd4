"""The economy: purchase grants per second at concurrency 32 with zero double grants, and
inventory reads at 100k items.

Starts a private PostgreSQL (the same supervisor and service declaration as ``stride up``)
in a temporary folder on a free port, migrated to head, then:

* **purchases**: 32 threads call :func:`core.content.inventory.purchase` (the transaction
  the API route runs: grant by idempotency key, limited stock, max count, inventory, ledger)
  for distinct buyers; every purchase is sent twice (a client's retry), interleaved, so
  half the calls are duplicates. Grants/s counts distinct grants over the wall time; the
  checks count grants, stock sold and units owned afterwards (zero double grants);
* **inventory reads**: 100k inventory stacks (1,000 users x 100 items) and one inventory of
  100k items (a collector owning every item of a 100k-item catalog), loaded with
  ``generate_series``; :func:`core.content.inventory.inventory_of` reads a random user's
  whole inventory, and the collector's first page and pages at random depths (100 stacks).

Prints the figures and writes ``bench/results/economy.json``.

    .venv/bin/python -m bench.economy [--purchases 4000] [--reads 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "economy.json"
GAME = "bench-economy"


def private_postgres() -> tuple[object, Path]:
    from cli.services import SERVICES, isolated_stack_env
    from cli.stack import Stack
    from core.platform.config import get_settings
    from core.platform.migrate import upgrade_to_head

    state, env = isolated_stack_env("stride-bench-economy-")
    os.environ.update(env)
    get_settings.cache_clear()
    stack = Stack(get_settings(), SERVICES)
    stack.up(["postgres"], report=lambda _m: None)
    upgrade_to_head(get_settings())
    return stack, state


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6, 3)

    return {"n": len(ordered), "p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": at(1.0)}


def timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    for _ in range(repeat // 10):  # untimed warm-up: plans, caches
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return percentiles(samples)


def load(engine: object, buyers: int) -> None:
    from sqlalchemy import text

    from core.platform.db import session_scope

    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(
            text(
                "INSERT INTO games (game_id, name, api_key_hash, api_key_prefix) "
                "VALUES (:g, 'Bench', md5(random()::text), 'sg_bench')"
            ),
            {"g": GAME},
        )
        # app users: buyers b-0.., inventory owners r-0.., the collector
        conn.execute(
            text(
                "INSERT INTO app_users (user_id, token_hash, token_prefix) "
                "SELECT u, md5(u), 'su_' FROM"
                " (SELECT 'b-' || i AS u FROM generate_series(0, :n - 1) i"
                " UNION ALL SELECT 'r-' || i FROM generate_series(0, 999) i"
                " UNION ALL SELECT 'collector') AS x"
            ),
            {"n": buyers},
        )
        conn.execute(
            text(
                "INSERT INTO catalog_items (game_id, item_id, name, stackable, max_count) "
                "SELECT :g, 'item-' || lpad(i::text, 6, '0'), 'Item ' || i, true, NULL "
                "FROM generate_series(0, 99999) i"
            ),
            {"g": GAME},
        )
        conn.execute(
            text(
                "INSERT INTO catalog_items (game_id, item_id, name, stackable, max_count) "
                "VALUES (:g, 'gem', 'Gem', true, 1000), (:g, 'crown', 'Crown', false, NULL)"
            ),
            {"g": GAME},
        )
        conn.execute(
            text(
                "INSERT INTO inventory_items (game_id, owner_id, item_id, unlocked_by, quantity) "
                "SELECT :g, 'r-' || u, 'item-' || lpad((u * 100 + i)::text, 6, '0'), 'r-' || u, 1 "
                "FROM generate_series(0, 999) u, generate_series(0, 99) i"
            ),
            {"g": GAME},
        )
        conn.execute(
            text(
                "INSERT INTO inventory_items (game_id, owner_id, item_id, unlocked_by, quantity) "
                "SELECT game_id, 'collector', item_id, 'collector', 3 FROM catalog_items "
                "WHERE game_id = :g AND item_id LIKE 'item-%'"
            ),
            {"g": GAME},
        )
        conn.execute(text("ANALYZE"))
    from core.content import catalog
    from core.content.catalog import ItemQuantity, PackSpec, Price

    with session_scope() as session:
        catalog.create_pack(
            session,
            GAME,
            "gems",
            PackSpec(
                name="Gems and a crown",
                items=[ItemQuantity(item_id="gem", quantity=10), ItemQuantity(item_id="crown")],
                price=Price(amount=2, currency="USD"),  # type: ignore[arg-type]
                stock_total=10**9,
            ),
        )


def purchases(engine: object, buyers: int, concurrency: int) -> dict[str, object]:
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from core.content import inventory
    from core.content.inventory import PurchaseRequest

    now = datetime.now(UTC)
    # Every buyer's purchase twice (a retry of the same key), in an interleaved order.
    calls = [i for i in range(buyers) for _ in range(2)]
    random.Random(7).shuffle(calls)
    created = 0
    lock = threading.Lock()

    def buy(i: int) -> None:
        nonlocal created
        request = PurchaseRequest(GAME, "gems", f"b-{i}", f"bench-key-{i}")
        with Session(engine) as session, session.begin():  # type: ignore[arg-type]
            _, new = inventory.purchase(session, request, token="STRIDE", now=now)
        if new:
            with lock:
                created += 1

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(buy, calls))
    elapsed = time.perf_counter() - start
    with engine.connect() as conn:  # type: ignore[attr-defined]
        grants = conn.execute(
            text("SELECT count(*) FROM grants WHERE game_id = :g"), {"g": GAME}
        ).scalar_one()
        sold = conn.execute(
            text("SELECT stock_sold FROM catalog_packs WHERE game_id = :g"), {"g": GAME}
        ).scalar_one()
        gems = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE quantity <> 10), count(*) FROM inventory_items "
                "WHERE game_id = :g AND item_id = 'gem'"
            ),
            {"g": GAME},
        ).one()
    double = grants - buyers + (sold - buyers) + gems[0]
    return {
        "concurrency": concurrency,
        "calls": len(calls),
        "distinct_purchases": buyers,
        "grants_per_s": round(buyers / elapsed, 1),
        "calls_per_s": round(len(calls) / elapsed, 1),
        "seconds": round(elapsed, 2),
        "grants": grants,
        "answered_created": created,
        "stock_sold": sold,
        "buyers_with_gems": gems[1],
        "double_grants": double,
    }


def reads(engine: object, repeat: int) -> dict[str, object]:
    from sqlalchemy.orm import Session

    from core.content import inventory

    rng = random.Random(11)
    session = Session(engine)  # type: ignore[arg-type]

    def one_user() -> None:
        rows = inventory.inventory_of(session, GAME, f"r-{rng.randrange(1000)}", limit=200)
        assert len(rows) == 100

    def collector_first() -> None:
        assert len(inventory.inventory_of(session, GAME, "collector", limit=100)) == 100

    def collector_deep() -> None:
        after = (f"item-{rng.randrange(99_000):06d}", "collector")
        assert (
            len(inventory.inventory_of(session, GAME, "collector", after=after, limit=100)) == 100
        )

    try:
        return {
            "user_of_100_stacks_among_100k": timed(one_user, repeat),
            "collector_of_100k_first_page": timed(collector_first, repeat),
            "collector_of_100k_random_page": timed(collector_deep, repeat),
        }
    finally:
        session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purchases", type=int, default=4000, help="distinct purchases")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--reads", type=int, default=2000, help="reads per variant")
    args = parser.parse_args()
    stack, state = private_postgres()
    try:
        from core.platform.config import get_settings
        from core.platform.db import engine_for

        engine = engine_for(get_settings().db_url, pool_size=args.concurrency + 4)
        load(engine, args.purchases)
        bought = purchases(engine, args.purchases, args.concurrency)
        print(json.dumps({"purchases": bought}, indent=2))
        read = reads(engine, args.reads)
        print(json.dumps({"inventory_reads": read}, indent=2))
        load_average = os.getloadavg()
        result = {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_average_at_end": [round(x, 2) for x in load_average],
            },
            "what": "core functions over a private PostgreSQL 15 (no HTTP)",
            "purchases": bought,
            "inventory_reads": read,
        }
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {RESULTS}")
    finally:
        stack.down(report=lambda _m: None)  # type: ignore[attr-defined]
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
