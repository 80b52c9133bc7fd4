"""Add a column: score_log.formula_version, which formula produced each score.

A new column with a server default is safe for running code: old code does not name it
and gets the default; new code writes it. On PostgreSQL 11+ adding a column with a
constant default does not rewrite the table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "score_log",
        sa.Column("formula_version", sa.SmallInteger(), server_default="1", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("score_log", "formula_version")
