"""The sweeper as `stride up sweeper` runs it (the supervisor's command, readiness probe and
heartbeat), sweeping every 0.2 s: each sweep observed through the rows it changes — a hold
past its deadline released, a gift past its expiry back with its giver, an abandoned upload
expired with its bytes deleted, a paid grant that could not be granted refunded — and its
metrics. Stopped at the end of the module: other modules expect their overdue rows to wait
for them."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cli.monitoring import service_details
from cli.stack import Stack
from core.content.catalog_models import PaymentState
from core.content.inventory import refund_command_id
from core.platform.config import Settings, get_settings
from tests.integration.content.assets_helpers import (
    client_fixture,  # noqa: F401 - the in-process API (fixture `client`)
    create_upload,
    make_asset,
    new_studio,
    patch,
)
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

FAST = {
    "STRIDE_SWEEP_HOLDS_INTERVAL_S": "0.2",
    "STRIDE_SWEEP_GIFTS_INTERVAL_S": "0.2",
    "STRIDE_SWEEP_UPLOADS_INTERVAL_S": "0.2",
    "STRIDE_SWEEP_REFUNDS_INTERVAL_S": "0.2",
    "STRIDE_SWEEP_BATCH_SIZE": "2",  # several batches per pass
}


@pytest.fixture(scope="module")
def sweeper(stack: Stack, db_engine: Engine) -> Iterator[Settings]:
    saved = {k: os.environ.get(k) for k in FAST}
    os.environ.update(FAST)
    try:
        stack.up(["sweeper"], report=lambda _m: None)
        status = stack.status("sweeper")
        assert status.ready, status.problem
        yield stack.settings
    finally:
        stack.stop("sweeper", report=lambda _m: None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


def test_holds_past_their_deadline_are_released_by_the_service(
    sweeper: Settings, db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    buyer = new_user()
    link(db_engine, economy, buyer)
    holds = held_purchases(db_engine, economy, buyer, "relic", 5, stock=10)

    def released() -> bool:
        return all(
            grant_of(db_engine, g).payment_state is PaymentState.payment_failed for g in holds
        )

    wait_for(released, "the sweeper to release 5 overdue holds")
    sold = "SELECT stock_sold FROM catalog_packs WHERE game_id = :g AND pack_id = 'relic'"
    assert scalar(db_engine, sold, g=economy.game_id) == 0
    failed = (
        "SELECT count(*) FROM reward_commands WHERE game_id = :g AND action = 'burn'"
        " AND status = 'failed'"
    )
    assert scalar(db_engine, failed, g=economy.game_id) == 5
    reason = grant_of(db_engine, holds[0]).payment_reason
    assert reason == "the burn was not authorized within 60 s of the purchase"


def test_gifts_past_their_expiry_go_back_to_the_giver(
    sweeper: Settings, db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    alice, bob = new_user(), new_user()
    offered = expired_gifts(db_engine, economy, alice, bob, "rose", 3)
    status = "SELECT status FROM gifts WHERE gift_id = :id"
    wait_for(
        lambda: all(scalar(db_engine, status, id=g) == "expired" for g in offered),
        "the sweeper to expire 3 gifts",
    )
    owned = (
        "SELECT coalesce(sum(quantity), 0) FROM inventory_items"
        " WHERE game_id = :g AND owner_id = :o AND item_id = 'rose'"
    )
    assert scalar(db_engine, owned, g=economy.game_id, o=alice.user_id) == 3
    assert scalar(db_engine, owned, g=economy.game_id, o=bob.user_id) == 0
    returned = (
        "SELECT count(*) FROM inventory_ledger WHERE game_id = :g AND owner_id = :o"
        " AND reason = 'gift_returned'"
    )
    assert scalar(db_engine, returned, g=economy.game_id, o=alice.user_id) == 3


def test_an_abandoned_upload_expires_and_its_bytes_go(
    sweeper: Settings, db_engine: Engine, client: TestClient
) -> None:
    from pathlib import Path

    studio = new_studio()
    asset = make_asset(client, studio)
    data = os.urandom(4096)
    location = create_upload(client, studio, asset["asset_id"], data)
    assert patch(client, studio, location, 0, data[:1000]).status_code == 204
    upload_id = uuid.UUID(location.rsplit("/", 1)[1])
    parts = Path(get_settings().content_root) / "_uploads" / str(upload_id)
    assert any(p.is_file() for p in parts.rglob("*"))
    with db_engine.begin() as conn:  # abandoned a day ago
        conn.exec_driver_sql(
            "UPDATE content_uploads SET expires_at = %(at)s WHERE upload_id = %(id)s",
            {"at": datetime.now(UTC) - timedelta(days=1), "id": upload_id},
        )

    status = "SELECT status FROM content_uploads WHERE upload_id = :id"
    wait_for(lambda: scalar(db_engine, status, id=upload_id) == "expired", "the upload to expire")
    wait_for(
        lambda: not any(p.is_file() for p in parts.rglob("*")) if parts.exists() else True,
        "its parts to be deleted",
    )
    assert client.get(location, headers=studio.headers).json()["status"] == "expired"


def _grant_read(client: TestClient, economy: Economy, buyer: User, grant_id: uuid.UUID) -> dict:
    """The buyer's own read of the grant (GET /v1/inventory/grants)."""
    response = client.get(
        "/v1/inventory/grants",
        params={"game_id": economy.game_id},
        headers={"Authorization": f"Bearer {buyer.token}"},
    )
    assert response.status_code == 200, response.text
    return next(g for g in response.json()["grants"] if g["grant_id"] == str(grant_id))


def test_a_paid_grant_that_could_not_be_granted_is_refunded_once(
    sweeper: Settings,
    db_engine: Engine,
    client: TestClient,
    economy: Economy,
    new_user: Callable[[], User],
) -> None:
    buyer = new_user()
    link(db_engine, economy, buyer)
    grant_id = owed_refund(db_engine, economy, buyer, "crown")

    refunding = wait_for(
        lambda: (g := grant_of(db_engine, grant_id)).payment_state is PaymentState.refunding and g,
        "the sweeper to issue the refund",
    )
    assert refunding.refund_command_id == refund_command_id(economy.game_id, grant_id)
    mints = "SELECT count(*) FROM reward_commands WHERE source_event_id = :id AND action = 'mint'"
    assert scalar(db_engine, mints, id=grant_id) == 1
    command = (
        "SELECT player_id || ' ' || amount::text || ' ' || token || ' ' || reason"
        " FROM reward_commands WHERE command_id = :c"
    )
    assert (
        scalar(db_engine, command, c=refunding.refund_command_id)
        == f"{buyer.user_id} 3.000000000000000000 STRIDE refund:crown"
    )

    read = _grant_read(client, economy, buyer, grant_id)
    assert (read["payment_state"], read["refund_command_id"]) == (
        "refunding",
        str(refunding.refund_command_id),
    )

    confirm(db_engine, refunding.refund_command_id)  # the writer mined the refund
    refunded = grant_of(db_engine, grant_id)
    assert refunded.payment_state is PaymentState.refunded
    assert refunded.settled_at is not None
    assert _grant_read(client, economy, buyer, grant_id)["payment_state"] == "refunded"
    # Passes keep running: never a second command.
    wait_for(
        lambda: b'stride_sweep_passes_total{sweep="refunds"}' in _metrics(sweeper),
        "the refunds sweep's counter",
    )
    assert scalar(db_engine, mints, id=grant_id) == 1


def _metrics(settings: Settings) -> bytes:
    url = f"http://{settings.metrics_host}:{settings.sweeper_metrics_port}/metrics"
    return httpx.get(url, timeout=5).content


def test_every_sweep_counts_and_logs_what_it_changed(sweeper: Settings, stack: Stack) -> None:
    body = _metrics(sweeper).decode()
    body_sweeps = ("holds", "gifts", "uploads", "refunds")
    for sweep in body_sweeps:
        assert f'stride_sweep_passes_total{{sweep="{sweep}"}}' in body
        assert f'stride_sweep_errors_total{{sweep="{sweep}"}} 0.0' in body
        rows = re.search(rf'stride_sweep_rows_total{{sweep="{sweep}"}} (\S+)', body)
        assert rows is not None and float(rows.group(1)) >= 1  # the tests above made some
    due = service_details(sweeper, "sweeper")  # `stride status` beside "ready"
    assert due is not None and set(due["due"]) == {*body_sweeps, "refunding"}
    log = stack.log_file("sweeper").read_text().splitlines()
    # Every line of the process is JSON; the supervisor adds its "--- starting" header.
    assert all(line.startswith(("{", "--- stride:")) for line in log if line)
    lines = [json.loads(line) for line in log if line.startswith("{")]
    passes = [line for line in lines if "sweep" in line and line["level"] == "info"]
    assert {line["sweep"] for line in passes} >= {"holds", "gifts", "uploads", "refunds"}
    assert all(line["rows"] >= 1 and line["batches"] >= 1 for line in passes)  # non-empty only
