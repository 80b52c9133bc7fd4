"""Maintenance of the samples: day partitions ahead, retention, hourly rollups (a job the
sampler runs at each hour; also callable on its own).

A day partition is ``metric_samples_YYYYMMDD`` for ``[day, day + 1)`` in UTC. Dropping a
day past retention is one ``DROP TABLE`` (no row-by-row delete, no bloat); the rollups
keep count, sum, sum of squares, min and max per metric and hour for much longer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Connection

_PARTITION = re.compile(r"^metric_samples_(\d{8})$")


def partition_name(day: date) -> str:
    return f"metric_samples_{day:%Y%m%d}"


def existing_days(conn: Connection) -> set[date]:
    names = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'metric_samples'"
        )
    ).scalars()
    days = set()
    for name in names:
        match = _PARTITION.match(name)
        if match:
            days.add(datetime.strptime(match.group(1), "%Y%m%d").date())
    return days


def ensure_day_partitions(conn: Connection, days: Iterable[date]) -> list[date]:
    """Create the partitions of ``days`` that do not exist yet; returns those created.
    Concurrent creators are serialized by an advisory lock (the sampler and a test)."""
    wanted = sorted(set(days))
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('metric_samples partitions'))"))
    have = existing_days(conn)
    created = []
    for day in wanted:
        if day in have:
            continue
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        # Names and bounds come from a date, never from input: safe to format.
        conn.execute(
            text(
                f"CREATE TABLE {partition_name(day)} PARTITION OF metric_samples"
                f" FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
        )
        created.append(day)
    return created


def drop_expired_partitions(conn: Connection, today: date, retention_days: int) -> list[date]:
    """Drop the day partitions wholly older than ``retention_days`` before ``today``."""
    cutoff = today - timedelta(days=retention_days)
    dropped = sorted(day for day in existing_days(conn) if day < cutoff)
    for day in dropped:
        conn.execute(text(f"DROP TABLE IF EXISTS {partition_name(day)}"))
    return dropped


_ROLLUP = text(
    """
    INSERT INTO metric_rollups_hourly (metric_id, hour, count, total, total_sq, min, max)
    SELECT metric_id, :hour, count(*), sum(value), sum(value * value), min(value), max(value)
    FROM metric_samples WHERE minute >= :hour AND minute < :end
    GROUP BY metric_id
    ON CONFLICT (metric_id, hour) DO UPDATE SET count = excluded.count, total = excluded.total,
        total_sq = excluded.total_sq, min = excluded.min, max = excluded.max
    """
)


def rollup_hour(conn: Connection, hour: datetime) -> int:
    """(Re)compute the rollups of one ended hour from its minutes (idempotent) and mark it
    complete for the ranking; returns the rows written."""
    hour = hour.replace(minute=0, second=0, microsecond=0)
    result = conn.execute(_ROLLUP, {"hour": hour, "end": hour + timedelta(hours=1)})
    conn.execute(
        text(
            "INSERT INTO metric_rollup_hours (hour) VALUES (:hour)"
            " ON CONFLICT (hour) DO UPDATE SET rolled_at = now()"
        ),
        {"hour": hour},
    )
    return result.rowcount or 0


def prune_rollups(conn: Connection, now: datetime, retention_days: int) -> int:
    result = conn.execute(
        text("DELETE FROM metric_rollups_hourly WHERE hour < :cutoff"),
        {"cutoff": now - timedelta(days=retention_days)},
    )
    conn.execute(
        text("DELETE FROM metric_rollup_hours WHERE hour < :cutoff"),
        {"cutoff": now - timedelta(days=retention_days)},
    )
    return result.rowcount or 0
