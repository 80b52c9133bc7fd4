"""The samples' maintenance job against PostgreSQL: day partitions, retention in O(1) per
day, hourly rollups that give the same mean and standard deviation as the minutes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.metrics.partitions import (
    drop_expired_partitions,
    ensure_day_partitions,
    existing_days,
    rollup_hour,
)
from core.metrics.rules import volatility
from tests.integration.metrics.conftest import new_metric, store_samples

pytestmark = pytest.mark.slow


def test_partitions_retention_and_rollups(db_engine: Engine) -> None:
    old = [date(2001, 1, 1), date(2001, 1, 2), date(2001, 1, 3)]
    with db_engine.begin() as conn:
        assert ensure_day_partitions(conn, old) == old
        assert ensure_day_partitions(conn, old) == []  # idempotent
    metric_id, _ = new_metric(db_engine)
    hour = datetime(2001, 1, 2, 5, tzinfo=UTC)
    values = [float(v) for v in (3, 9, 4, 12, 7, 1, 30)]
    store_samples(
        db_engine, metric_id, [(hour + timedelta(minutes=i * 7), v) for i, v in enumerate(values)]
    )
    store_samples(db_engine, metric_id, [(hour + timedelta(hours=1), 999.0)])  # the next hour
    with db_engine.begin() as conn:
        assert rollup_hour(conn, hour + timedelta(minutes=30)) >= 1
        assert rollup_hour(conn, hour) >= 1  # recomputed, same row
        row = conn.execute(
            text(
                "SELECT count, total, total_sq, min, max FROM metric_rollups_hourly"
                " WHERE metric_id = :i AND hour = :h"
            ),
            {"i": metric_id, "h": hour},
        ).one()
        minutes = conn.execute(
            text(
                "SELECT avg(value), stddev_samp(value) FROM metric_samples"
                " WHERE metric_id = :i AND minute >= :h AND minute < :h + interval '1 hour'"
            ),
            {"i": metric_id, "h": hour},
        ).one()
        # The partition of 2001-01-02 holds them (pruned by minute).
        in_day = conn.execute(
            text("SELECT count(*) FROM metric_samples_20010102 WHERE metric_id = :i"),
            {"i": metric_id},
        ).scalar_one()
    assert (row.count, row.min, row.max) == (7, 1.0, 30.0)
    figures = volatility(row.count, row.total, row.total_sq)
    assert figures.mean == pytest.approx(float(minutes[0]))
    assert figures.stddev == pytest.approx(minutes[1])
    assert in_day == 8

    with db_engine.begin() as conn:
        dropped = drop_expired_partitions(conn, date(2001, 1, 10), retention_days=7)
        assert dropped == [date(2001, 1, 1), date(2001, 1, 2)]  # wholly older than Jan 3
        assert not set(dropped) & existing_days(conn)
        assert date(2001, 1, 3) in existing_days(conn)
        gone = conn.execute(
            text("SELECT count(*) FROM metric_samples WHERE metric_id = :i"), {"i": metric_id}
        ).scalar_one()
        drop_expired_partitions(conn, date(2001, 1, 11), retention_days=7)
    assert gone == 0
