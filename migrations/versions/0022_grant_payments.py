"""Grants paid in the game token are held until their burn is on chain (#14 x #15).

``grants`` gains ``payment_state`` (``awaiting_payment`` → ``paid`` | ``payment_failed`` |
``refund_due``; null for grants not paid in the token), ``payment_reason``,
``payment_due_at`` (the burn must be authorized before it) and ``settled_at``, plus two
partial indexes: by ``reward_command_id`` (the writer's confirmation finds the grant of a
burn) and by ``payment_due_at`` of the held ones (the sweep of unpaid holds).

Expand only: nullable columns without defaults (no table rewrite) and indexes built
``CONCURRENTLY``, so purchases keep flowing during the upgrade. Grants made before it keep
a null state: they were granted at once, on credit, as the economy did until now.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "grants",
        sa.Column(
            "payment_state",
            sa.String(length=24),
            nullable=True,
            comment="null: not paid in the game token (granted at once)",
        ),
    )
    op.add_column(
        "grants", sa.Column("payment_reason", sa.Text(), nullable=True, comment="why it failed")
    )
    op.add_column(
        "grants",
        sa.Column(
            "payment_due_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="the burn must be authorized before this",
        ),
    )
    op.add_column(
        "grants",
        sa.Column(
            "settled_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when it became paid or payment_failed",
        ),
    )
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_grants_reward_command ON grants"
            " (reward_command_id) WHERE reward_command_id IS NOT NULL"
        )
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_grants_payment_due ON grants"
            " (payment_due_at) WHERE payment_state = 'awaiting_payment'"
        )


def downgrade() -> None:
    op.drop_index("ix_grants_payment_due", table_name="grants")
    op.drop_index("ix_grants_reward_command", table_name="grants")
    op.drop_column("grants", "settled_at")
    op.drop_column("grants", "payment_due_at")
    op.drop_column("grants", "payment_reason")
    op.drop_column("grants", "payment_state")
