"""Admin login throttling: admin_login_attempts.

Only a new table, so no running process is affected.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_login_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_login_attempts")),
    )
    op.create_index(
        op.f("ix_admin_login_attempts_attempted_at"), "admin_login_attempts", ["attempted_at"]
    )
    op.create_index(
        "ix_admin_login_attempts_username_attempted_at",
        "admin_login_attempts",
        ["username", "attempted_at"],
    )
    op.create_index(
        "ix_admin_login_attempts_client_ip_attempted_at",
        "admin_login_attempts",
        ["client_ip", "attempted_at"],
    )


def downgrade() -> None:
    op.drop_table("admin_login_attempts")
