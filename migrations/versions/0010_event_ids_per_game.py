"""Event ids are unique per game: processed_events' key becomes (game_id, event_id).

Two games may pick the same event id (it is theirs to choose); keyed on ``event_id`` alone,
game B's event was accepted and then silently taken for a duplicate of game A's. Every
existing row stays: the old key was stricter, so no two rows share the new key.

While old scoring workers run against the new key their ``ON CONFLICT (event_id)`` fails
and they retry (the stream stalls, nothing is lost or counted twice) until the new code is
up; so stop the workers, migrate, start the new workers. On a large table the new primary
key index is built in this transaction (minutes at 10 M rows, writes to the table wait).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("pk_processed_events", "processed_events", type_="primary")
    op.create_primary_key("pk_processed_events", "processed_events", ["game_id", "event_id"])


def downgrade() -> None:
    shared = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT event_id FROM processed_events"
                " GROUP BY event_id HAVING count(*) > 1 LIMIT 1"
            )
        )
        .first()
    )
    if shared is not None:
        raise RuntimeError(
            f"cannot go back to one key per event id: event id {shared[0]} is used by several "
            "games (delete or re-key those rows first)"
        )
    op.drop_constraint("pk_processed_events", "processed_events", type_="primary")
    op.create_primary_key("pk_processed_events", "processed_events", ["event_id"])
