"""Migration 0021 on a database that already holds day partitions with samples: the covering
index is built on each partition and attached, the parent's index becomes valid, a day
partition created later gets its own, the series read is index-only, an interrupted run is
finished by running the upgrade again, and the downgrade drops it all."""

from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import text

from core.metrics import partitions
from core.platform.migrate import alembic_config
from tests.integration.platform.test_migrations import scratch  # noqa: F401 - fixture

pytestmark = pytest.mark.slow

COVERING = "ix_metric_samples_metric_id_minute_covering"
INDEXES = text(
    "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    " JOIN pg_class t ON t.oid = i.indrelid"
    " WHERE t.relname LIKE 'metric_samples%' AND c.relname LIKE '%covering' ORDER BY 1"
)
ATTACHED = text("SELECT count(*) FROM pg_inherits WHERE inhparent = CAST(:parent AS regclass)")


def _load(engine, days: list[date]) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO metrics (key, kind, description, unit, source)"
                " SELECT 'm/' || i, 't', 'd', 'u', 's' FROM generate_series(1, 20) AS i"
            )
        )
        partitions.ensure_day_partitions(conn, days)
        conn.execute(
            text(
                "INSERT INTO metric_samples (metric_id, minute, value)"
                " SELECT m.id, g, m.id FROM metrics m CROSS JOIN generate_series("
                " CAST(:start AS timestamptz), CAST(:end AS timestamptz), interval '10 minutes') g"
            ),
            {
                "start": datetime(2026, 11, 1, tzinfo=UTC),
                "end": datetime(2026, 11, 3, 23, tzinfo=UTC),
            },
        )


def test_0021_indexes_every_existing_and_later_partition(scratch) -> None:  # noqa: F811
    settings, engine = scratch
    config = alembic_config(settings)
    command.upgrade(config, "0020")
    days = [date(2026, 11, 1) + timedelta(days=d) for d in range(3)]
    _load(engine, days)

    command.upgrade(config, "0021")
    with engine.connect() as conn:
        found = dict(conn.execute(INDEXES).tuples().all())
        assert found[COVERING] is True  # valid: every partition's index attached
        assert sum(1 for name in found if name != COVERING) == 3
        assert all(found.values())
        assert conn.execute(ATTACHED, {"parent": COVERING}).scalar_one() == 3
        assert conn.execute(
            text(
                "SELECT 1 FROM pg_indexes WHERE tablename = 'chain_logs'"
                " AND indexname = 'ix_chain_logs_block_timestamp_brin'"
            )
        ).scalar()
    with engine.begin() as conn:  # a day created after the migration gets its own copy
        partitions.ensure_day_partitions(conn, [date(2026, 11, 4)])
    with engine.connect() as conn:
        assert conn.execute(ATTACHED, {"parent": COVERING}).scalar_one() == 4
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE metric_samples"))
        conn.execute(text("SET enable_bitmapscan = off"))  # tiny tables: show the index path
        plan = "\n".join(
            conn.execute(
                text(
                    "EXPLAIN SELECT minute, value FROM metric_samples WHERE metric_id = 3"
                    " AND minute >= '2026-11-01' AND minute < '2026-11-03' ORDER BY minute"
                )
            ).scalars()
        )
    assert "Index Only Scan using metric_samples_20261101_covering" in plan, plan

    # An interrupted build: a partition's index missing and the parent's invalid again.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"DROP INDEX {COVERING}"))
        conn.execute(
            text(
                f"CREATE INDEX {COVERING} ON ONLY metric_samples (metric_id, minute)"
                " INCLUDE (value)"
            )
        )
        conn.execute(
            text(
                "CREATE INDEX metric_samples_20261101_covering ON"
                " metric_samples_20261101 (metric_id, minute) INCLUDE (value)"
            )
        )
        conn.execute(
            text(f"ALTER INDEX {COVERING} ATTACH PARTITION metric_samples_20261101_covering")
        )
        conn.execute(text("UPDATE alembic_version SET version_num = '0020'"))
    command.upgrade(config, "0021")  # finishes the other partitions, keeps the one done
    with engine.connect() as conn:
        assert dict(conn.execute(INDEXES).tuples().all())[COVERING] is True
        assert conn.execute(ATTACHED, {"parent": COVERING}).scalar_one() == 4

    command.downgrade(config, "0020")
    with engine.connect() as conn:
        assert conn.execute(INDEXES).all() == []
