"""Refunds of paid grants whose items could not be granted (#15, the sweeper).

A grant paid in the game token whose burn was confirmed but whose items no longer fit is
``refund_due`` (0022). The sweeper now refunds it: a mint of what was paid, keyed by the
grant (one reward command id per grant, so exactly once on chain), recorded in the new
``grants.refund_command_id``; the grant moves to ``refunding`` and, when the writer confirms
the mint, ``refunded`` (``payment_state`` is a plain string column: the two new states need
no type change). Two partial indexes: the sweep's (``refund_due`` grants by ``settled_at``)
and the writer's confirmation's (a grant by its refund command).

Expand only: one nullable column without a default (no table rewrite) and indexes built
``CONCURRENTLY``, so purchases keep flowing during the upgrade.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "grants",
        sa.Column(
            "refund_command_id",
            sa.Uuid(),
            nullable=True,
            comment="the mint that refunds the price (refunding, refunded)",
        ),
    )
    op.alter_column(
        "grants",
        "settled_at",
        existing_type=sa.DateTime(timezone=True),
        existing_nullable=True,
        comment="when it became paid, payment_failed, refund_due or refunded",
        existing_comment="when it became paid or payment_failed",
    )
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_grants_refund_due ON grants"
            " (settled_at) WHERE payment_state = 'refund_due'"
        )
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_grants_refund_command ON grants"
            " (refund_command_id) WHERE refund_command_id IS NOT NULL"
        )


def downgrade() -> None:
    op.drop_index("ix_grants_refund_command", table_name="grants")
    op.drop_index("ix_grants_refund_due", table_name="grants")
    op.alter_column(
        "grants",
        "settled_at",
        existing_type=sa.DateTime(timezone=True),
        existing_nullable=True,
        comment="when it became paid or payment_failed",
        existing_comment="when it became paid, payment_failed, refund_due or refunded",
    )
    op.drop_column("grants", "refund_command_id")
