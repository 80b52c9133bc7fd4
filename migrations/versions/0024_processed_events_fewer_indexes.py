"""One index of ``processed_events`` for a player's events and the player id search, instead
of two, so that each scored event updates one btree fewer.

``ix_processed_events_game_player`` (``game_id, player_id``: the "Events of this player"
list) and ``ix_processed_events_player_id`` (``player_id varchar_pattern_ops``: the admin
search by a player id or its beginning, migration 0012) become one index,
``ix_processed_events_player_game`` on ``(player_id varchar_pattern_ops, game_id)``: a
pattern-ops btree answers equality too, so ``player_id = … AND game_id = …`` is one range
of it, and a prefix search is a range of its leading column. Anything filtering on
``game_id`` alone already has the primary key ``(game_id, event_id)``. The scoring
transaction's insert maintained five btrees and a BRIN per event; it now maintains four
and the BRIN (CPU and WAL per event in docs/performance.md section 3).

Built ``CONCURRENTLY`` (outside a transaction) before the two old indexes are dropped, so
the admin lists and the scoring workers keep running; an ``INVALID`` leftover of an
interrupted build is dropped and built again (as in 0012). The downgrade rebuilds the two.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW = {
    "ix_processed_events_player_game": "processed_events (player_id varchar_pattern_ops, game_id)"
}
OLD = {
    "ix_processed_events_game_player": "processed_events (game_id, player_id)",
    "ix_processed_events_player_id": "processed_events (player_id varchar_pattern_ops)",
}

INVALID = sa.text(
    "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    " WHERE c.relname = :name AND c.relnamespace = current_schema()::regnamespace"
)


def _build(indexes: dict[str, str]) -> None:
    for name, columns in indexes.items():
        if op.get_bind().execute(INVALID, {"name": name}).scalar():  # a failed build's
            op.execute(f"DROP INDEX CONCURRENTLY {name}")
        op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {columns}")


def upgrade() -> None:
    with op.get_context().autocommit_block():
        _build(NEW)
        for name in OLD:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        _build(OLD)
        for name in NEW:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
