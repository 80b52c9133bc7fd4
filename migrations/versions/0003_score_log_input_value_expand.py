"""Rename score_log.input -> input_value, step 1 of 2 (expand).

Adds ``input_value``, backfills it in batches, and installs a trigger that keeps the two
columns equal whichever one a writer fills, so code that knows only ``input`` and code
that knows only ``input_value`` can run side by side during the rollout. Readers use
``COALESCE(input_value, input)``. Step 2 (0004) drops ``input`` once no deployed code
reads it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 10_000

SYNC_FUNCTION = """
CREATE OR REPLACE FUNCTION score_log_sync_input() RETURNS trigger AS $$
BEGIN
    IF NEW.input_value IS NULL THEN
        NEW.input_value := NEW.input;
    ELSIF NEW.input IS NULL THEN
        NEW.input := NEW.input_value;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.add_column("score_log", sa.Column("input_value", sa.Double(), nullable=True))
    # New code may write only input_value: the old column must accept NULL (trigger fills it).
    op.alter_column("score_log", "input", existing_type=sa.Double(), nullable=True)
    op.execute(SYNC_FUNCTION)
    op.execute(
        "CREATE TRIGGER score_log_sync_input BEFORE INSERT OR UPDATE ON score_log "
        "FOR EACH ROW EXECUTE FUNCTION score_log_sync_input()"
    )
    # Backfill in bounded batches so no single statement locks the whole table for long.
    conn = op.get_bind()
    while True:
        done = conn.execute(
            sa.text(
                "UPDATE score_log SET input_value = input WHERE id IN ("
                " SELECT id FROM score_log WHERE input_value IS NULL LIMIT :n)"
            ),
            {"n": BATCH},
        ).rowcount
        if done < BATCH:
            break


def downgrade() -> None:
    op.execute("UPDATE score_log SET input = input_value WHERE input IS NULL")
    op.execute("DROP TRIGGER score_log_sync_input ON score_log")
    op.execute("DROP FUNCTION score_log_sync_input()")
    op.alter_column("score_log", "input", existing_type=sa.Double(), nullable=False)
    op.drop_column("score_log", "input_value")
