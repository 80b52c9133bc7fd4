"""Leaderboards: definitions, periods, records per period, applied submissions, rank blocks.

Only new tables, so no running process is affected. Archived periods stay in
``leaderboard_records`` (keyed by ``period_start``); ``leaderboard_submissions`` is the
idempotency key of the writer; ``leaderboard_rank_blocks`` keeps rank lookups short
(docs/leaderboards.md).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leaderboards",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column(
            "sort_order",
            sa.Enum("asc", "desc", name="leaderboard_sort_order", native_enum=False, length=8),
            nullable=False,
        ),
        sa.Column(
            "operator",
            sa.Enum(
                "best",
                "set",
                "incr",
                "decr",
                name="leaderboard_operator",
                native_enum=False,
                length=8,
            ),
            nullable=False,
        ),
        sa.Column("reset_schedule", sa.String(length=128), nullable=True),
        sa.Column(
            "metadata", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["game_id"], ["games.game_id"], name=op.f("fk_leaderboards_game_id_games")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaderboards")),
    )
    op.create_index(op.f("ix_leaderboards_game_id"), "leaderboards", ["game_id"], unique=False)
    op.create_table(
        "leaderboard_periods",
        sa.Column("leaderboard_id", sa.String(length=64), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["leaderboard_id"],
            ["leaderboards.id"],
            name=op.f("fk_leaderboard_periods_leaderboard_id_leaderboards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "leaderboard_id", "period_start", name=op.f("pk_leaderboard_periods")
        ),
    )
    op.create_table(
        "leaderboard_rank_blocks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("leaderboard_id", sa.String(length=64), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lower_sort_key", sa.BigInteger(), nullable=False),
        sa.Column("lower_reached_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lower_owner_id", sa.String(length=128, collation="C"), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["leaderboard_id"],
            ["leaderboards.id"],
            name=op.f("fk_leaderboard_rank_blocks_leaderboard_id_leaderboards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaderboard_rank_blocks")),
        sa.UniqueConstraint(
            "leaderboard_id",
            "period_start",
            "lower_sort_key",
            "lower_reached_at",
            "lower_owner_id",
            name="uq_leaderboard_rank_blocks_lower_bound",
        ),
    )
    op.create_table(
        "leaderboard_records",
        sa.Column("leaderboard_id", sa.String(length=64), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner_id", sa.String(length=128, collation="C"), nullable=False),
        sa.Column("score", sa.BigInteger(), nullable=False),
        sa.Column("sort_key", sa.BigInteger(), nullable=False),
        sa.Column("num_score", sa.Integer(), nullable=False),
        sa.Column("reached_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(
            ["leaderboard_id"],
            ["leaderboards.id"],
            name=op.f("fk_leaderboard_records_leaderboard_id_leaderboards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "leaderboard_id", "period_start", "owner_id", name=op.f("pk_leaderboard_records")
        ),
    )
    op.create_index(
        "ix_leaderboard_records_rank",
        "leaderboard_records",
        ["leaderboard_id", "period_start", "sort_key", "reached_at", "owner_id"],
        unique=False,
    )
    op.create_table(
        "leaderboard_submissions",
        sa.Column("leaderboard_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.String(length=128), nullable=False),
        sa.Column("score", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["leaderboard_id"],
            ["leaderboards.id"],
            name=op.f("fk_leaderboard_submissions_leaderboard_id_leaderboards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "leaderboard_id", "event_id", name=op.f("pk_leaderboard_submissions")
        ),
    )


def downgrade() -> None:
    op.drop_table("leaderboard_submissions")
    op.drop_index("ix_leaderboard_records_rank", table_name="leaderboard_records")
    op.drop_table("leaderboard_records")
    op.drop_table("leaderboard_rank_blocks")
    op.drop_table("leaderboard_periods")
    op.drop_index(op.f("ix_leaderboards_game_id"), table_name="leaderboards")
    op.drop_table("leaderboards")
