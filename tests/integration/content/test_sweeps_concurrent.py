"""The sweeps' guarantees on the real PostgreSQL: a refund is one command however often the
sweep replays, and two sweepers at once never release a hold or return an escrow twice
(a batch in flight keeps its rows; the other sweeper skips them and takes the rest)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cli.sweeper import SWEEPS, SweepName, run_pass
from core.content import inventory
from core.content.catalog_models import PaymentState
from core.platform.config import get_settings
from tests.integration.content.conftest import Economy, User
from tests.integration.content.sweep_helpers import (
    confirm,
    expired_gifts,
    grant_of,
    held_purchases,
    link,
    owed_refund,
    scalar,
    wait_for,
)

pytestmark = pytest.mark.integration

MINTS = "SELECT count(*) FROM reward_commands WHERE source_event_id = :id AND action = 'mint'"


def test_a_replayed_refund_sweep_never_makes_a_second_command(
    db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    buyer = new_user()
    link(db_engine, economy, buyer)
    grant_id = owed_refund(db_engine, economy, buyer, "crown")
    settings = get_settings()
    refunds = SWEEPS[SweepName.refunds]

    assert run_pass(db_engine, settings, refunds).rows >= 1
    first = grant_of(db_engine, grant_id)
    assert first.payment_state is PaymentState.refunding
    run_pass(db_engine, settings, refunds)  # replayed: the grant is no longer owed
    assert grant_of(db_engine, grant_id).payment_state is PaymentState.refunding
    assert scalar(db_engine, MINTS, id=grant_id) == 1

    # A replay: the grant found owed again (a restored backup, a crash before the state
    # change): the same command id, nothing inserted, and a mint already through ends it.
    confirm(db_engine, first.refund_command_id)
    assert grant_of(db_engine, grant_id).payment_state is PaymentState.refunded
    with db_engine.begin() as conn:
        conn.execute(
            text("UPDATE grants SET payment_state = 'refund_due' WHERE grant_id = :id"),
            {"id": grant_id},
        )
    run_pass(db_engine, settings, refunds)
    again = grant_of(db_engine, grant_id)
    assert again.payment_state is PaymentState.refunded
    assert again.refund_command_id == first.refund_command_id
    assert scalar(db_engine, MINTS, id=grant_id) == 1
    status = "SELECT status FROM reward_commands WHERE command_id = :c"
    assert scalar(db_engine, status, c=first.refund_command_id) == "confirmed"


SOLD = "SELECT stock_sold FROM catalog_packs WHERE game_id = :g AND pack_id = :p"
FAILED_BURNS = (
    "SELECT count(*) FROM reward_commands WHERE game_id = :g AND action = 'burn'"
    " AND status = 'failed'"
)


def _sold_elsewhere(engine: Engine, game_id: str, pack_id: str, units: int) -> None:
    """Units of the pack sold and paid: a double release would give them back too."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE catalog_packs SET stock_sold = stock_sold + :n"
                " WHERE game_id = :g AND pack_id = :p"
            ),
            {"n": units, "g": game_id, "p": pack_id},
        )


def test_a_second_sweeper_skips_the_rows_of_a_batch_in_flight(
    db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    g = economy.game_id
    buyer = new_user()
    link(db_engine, economy, buyer)
    holds = held_purchases(db_engine, economy, buyer, "relic", 6, stock=20)
    _sold_elsewhere(db_engine, g, "relic", 4)
    assert scalar(db_engine, SOLD, g=g, p="relic") == 10

    first_took = threading.Event()
    first_may_commit = threading.Event()
    first_released: list[int] = []

    def first_sweeper() -> None:  # one batch of 3, held open
        with Session(db_engine) as session, session.begin():
            first_released.append(
                inventory.expire_unpaid(session, datetime.now(UTC), game_id=g, limit=3)
            )
            first_took.set()
            first_may_commit.wait(30)

    first = threading.Thread(target=first_sweeper)
    first.start()
    assert first_took.wait(30)
    second = threading.Thread(
        target=run_pass, args=(db_engine, get_settings(), SWEEPS[SweepName.holds])
    )
    second.start()
    # The second sweeper has taken the other three and waits for the pack's row (the
    # first batch gave a unit back and has not committed): a lock wait in PostgreSQL.
    waiting = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND query ILIKE '%catalog_packs%'"
    )
    wait_for(lambda: scalar(db_engine, waiting) == 1, "the second sweeper to wait on the pack")
    first_may_commit.set()
    first.join(30)
    second.join(30)

    assert first_released == [3]
    assert all(grant_of(db_engine, h).payment_state is PaymentState.payment_failed for h in holds)
    assert scalar(db_engine, FAILED_BURNS, g=g) == 6
    assert scalar(db_engine, SOLD, g=g, p="relic") == 4  # each hold released once


def test_two_sweeper_processes_at_once_release_each_hold_and_escrow_once(
    db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    g = economy.game_id
    buyer, alice, bob = new_user(), new_user(), new_user()
    link(db_engine, economy, buyer)
    holds = held_purchases(db_engine, economy, buyer, "relic", 20, stock=40)
    _sold_elsewhere(db_engine, g, "relic", 5)
    offered = expired_gifts(db_engine, economy, alice, bob, "rose", 10)

    env = {**os.environ, "STRIDE_SWEEP_BATCH_SIZE": "2"}  # ten batches each, interleaved
    command = [sys.executable, "-m", "cli.main", "sweep", "--once"]
    command += ["--only", "holds", "--only", "gifts"]
    sweepers = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    for sweeper in sweepers:
        out, _ = sweeper.communicate(timeout=120)
        assert sweeper.returncode == 0, out.decode()

    assert all(grant_of(db_engine, h).payment_state is PaymentState.payment_failed for h in holds)
    assert scalar(db_engine, FAILED_BURNS, g=g) == 20
    assert scalar(db_engine, SOLD, g=g, p="relic") == 5
    expired = "SELECT count(*) FROM gifts WHERE game_id = :g AND status = 'expired'"
    assert scalar(db_engine, expired, g=g) == len(offered)
    owned = (
        "SELECT coalesce(sum(quantity), 0) FROM inventory_items"
        " WHERE game_id = :g AND owner_id = :o AND item_id = 'rose'"
    )
    assert scalar(db_engine, owned, g=g, o=alice.user_id) == 10
    returned = (
        "SELECT count(*) FROM inventory_ledger WHERE game_id = :g AND owner_id = :o"
        " AND reason = 'gift_returned'"
    )
    assert scalar(db_engine, returned, g=g, o=alice.user_id) == 10
