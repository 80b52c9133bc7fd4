"""Remove a column: score_log.client_ip.

We stopped collecting client IP addresses (personal data we have no use for). The
column was nullable and no released code has written or read it since 0002, so dropping
it cannot break a running process. Downgrade brings the column back empty: the dropped
values are gone, which is the point of removing personal data.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_column("score_log", "client_ip")


def downgrade() -> None:
    op.add_column("score_log", sa.Column("client_ip", postgresql.INET(), nullable=True))
