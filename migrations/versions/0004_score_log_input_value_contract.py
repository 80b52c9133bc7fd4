"""Rename score_log.input -> input_value, step 2 of 2 (contract).

Run only once every deployed writer fills ``input_value`` (all code since 0003 does).
Drops the sync trigger and the old column and makes ``input_value`` NOT NULL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Catch any row written between the backfill and now by code that filled only `input`.
    op.execute("UPDATE score_log SET input_value = input WHERE input_value IS NULL")
    op.execute("DROP TRIGGER score_log_sync_input ON score_log")
    op.execute("DROP FUNCTION score_log_sync_input()")
    op.alter_column("score_log", "input_value", existing_type=sa.Double(), nullable=False)
    op.drop_column("score_log", "input")


def downgrade() -> None:
    from importlib import import_module

    expand = import_module("migrations.versions.0003_score_log_input_value_expand")
    op.add_column("score_log", sa.Column("input", sa.Double(), nullable=True))
    op.execute("UPDATE score_log SET input = input_value")
    op.alter_column("score_log", "input_value", existing_type=sa.Double(), nullable=True)
    op.execute(expand.SYNC_FUNCTION)
    op.execute(
        "CREATE TRIGGER score_log_sync_input BEFORE INSERT OR UPDATE ON score_log "
        "FOR EACH ROW EXECUTE FUNCTION score_log_sync_input()"
    )
