"""Indexes for the admin panel's list of processed_events (its sort and its search) and its
home page (the players active today).

At 10 M rows the panel's sort by ``occurred_at`` read and sorted the whole table (1.1 s)
and its search (``ILIKE '%…%'`` on every text column) read all of it (stopped by the 5 s
statement timeout). A big table's search now matches ids exactly or by prefix
(``api/admin/listing.py``), which these indexes answer:

* ``occurred_at``: the sort, and the cursor of its next pages (a range scan);
* ``event_id``: an event id pasted in the search box (the primary key leads with
  ``game_id``, so it cannot find an event id alone);
* ``player_id`` with ``varchar_pattern_ops``: a player id or its beginning
  (``LIKE 'player-12%'``), whatever the database's collation;
* ``player_totals.last_event_at``: the home page's "active players today / last 7 days"
  (a range count instead of a scan of every player's totals).

Built ``CONCURRENTLY`` (outside a transaction), so the scoring workers keep writing while it
runs (3 full scans at 10 M rows, about a minute each here); nothing running needs to stop.
If a build fails (e.g. it was interrupted) its index is left ``INVALID``: running the upgrade
again drops such a leftover and builds it, and keeps the indexes already built.
The downgrade drops them the same way (``DROP INDEX CONCURRENTLY``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_processed_events_occurred_at": "processed_events (occurred_at)",
    "ix_processed_events_event_id": "processed_events (event_id)",
    "ix_processed_events_player_id": "processed_events (player_id varchar_pattern_ops)",
    "ix_player_totals_last_event_at": "player_totals (last_event_at)",
}


INVALID = sa.text(
    "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    " WHERE c.relname = :name AND c.relnamespace = current_schema()::regnamespace"
)


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for name, columns in INDEXES.items():
            if op.get_bind().execute(INVALID, {"name": name}).scalar():  # a failed build's
                op.execute(f"DROP INDEX CONCURRENTLY {name}")
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {columns}")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
