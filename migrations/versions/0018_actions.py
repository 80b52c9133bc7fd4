"""The app's write flows: ``actions`` (what a user's wallet was asked to sign, simulated
first, and what became of its transaction). Only a new table; a downgrade drops it.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "actions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("wallet", sa.String(length=42), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("prepared", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="prepared", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("destination", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        _now("created_at"),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        _now("updated_at"),
        sa.CheckConstraint(
            "status IN ('prepared', 'submitted', 'relaying', 'confirmed', 'failed')",
            name="ck_actions_status",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("chain_id", "tx_hash", name="uq_actions_chain_tx_hash"),
    )
    op.create_index("ix_actions_user_created", "actions", ["user_id", "created_at"])
    op.create_index(
        "ix_actions_open",
        "actions",
        ["chain_id", "status"],
        postgresql_where=sa.text("status IN ('submitted', 'relaying')"),
    )


def downgrade() -> None:
    op.drop_index("ix_actions_open", table_name="actions")
    op.drop_index("ix_actions_user_created", table_name="actions")
    op.drop_table("actions")
