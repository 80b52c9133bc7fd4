"""Indexes for the metrics' reads: a covering index for a metric's series and a BRIN index
for the chain metrics' per-minute counts.

* ``metric_samples (metric_id, minute) INCLUDE (value)``: a metric's 24 h series becomes an
  index-only scan (about 20 pages) instead of one heap page per sample (about 1,450: the
  sampler appends a minute of every metric at a time, so a metric's day is spread over
  1,440 pages). Measured in docs/metrics.md (the series' p99).
* ``chain_logs`` BRIN on ``block_timestamp``: the sampler's per-minute chain reads (ERC-20
  transfer volume, marketplace sales) select one minute of block time; logs are appended in
  block order, so a BRIN index (a few pages) turns those reads into range reads instead of
  a scan of every log.

Neither blocks writes while it builds. ``metric_samples`` is partitioned by day, and
PostgreSQL cannot build an index ``CONCURRENTLY`` on a partitioned table: the index is
created on the parent alone (``ON ONLY``, invalid until every partition has its own), then
built ``CONCURRENTLY`` on each day partition and attached; once the last one is attached the
parent's index is valid, and every partition created after it
(``core.metrics.partitions``) gets its own copy at creation. Re-running the upgrade after an
interrupted build drops an ``INVALID`` leftover partition index and builds it again.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COVERING = "ix_metric_samples_metric_id_minute_covering"
BRIN = "ix_chain_logs_block_timestamp_brin"

INVALID = sa.text(
    "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    " WHERE c.relname = :name AND c.relnamespace = current_schema()::regnamespace"
)
PARTITIONS = sa.text(
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " WHERE i.inhparent = CAST('metric_samples' AS regclass) ORDER BY c.relname"
)
# The partition's index already attached to the parent's, if any.
ATTACHED = sa.text(
    "SELECT 1 FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid"
    " WHERE i.inhparent = CAST(:parent AS regclass)"
    " AND x.indrelid = CAST(:partition AS regclass)"
)


def upgrade() -> None:
    bind = op.get_bind()
    with op.get_context().autocommit_block():
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {COVERING} ON ONLY metric_samples"
            " (metric_id, minute) INCLUDE (value)"
        )
        # Partition names come from the catalog (metric_samples_YYYYMMDD), never from input.
        for partition in bind.execute(PARTITIONS).scalars().all():
            if bind.execute(ATTACHED, {"parent": COVERING, "partition": partition}).scalar():
                continue
            name = f"{partition}_covering"
            if bind.execute(INVALID, {"name": name}).scalar():  # an interrupted build's
                op.execute(f"DROP INDEX CONCURRENTLY {name}")
            op.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {partition}"
                " (metric_id, minute) INCLUDE (value)"
            )
            op.execute(f"ALTER INDEX {COVERING} ATTACH PARTITION {name}")
        if bind.execute(INVALID, {"name": BRIN}).scalar():
            op.execute(f"DROP INDEX CONCURRENTLY {BRIN}")
        op.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {BRIN} ON chain_logs"
            " USING brin (block_timestamp)"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {BRIN}")
    # A partitioned table's index cannot be dropped CONCURRENTLY; dropping it drops the
    # partitions' copies with it (a short lock per partition, no rebuild).
    op.execute(f"DROP INDEX IF EXISTS {COVERING}")
