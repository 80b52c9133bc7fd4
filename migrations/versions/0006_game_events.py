"""Streaming spine: games (hashed API keys), processed_events, player_totals, reward_commands.

Only new tables, so no running process is affected. ``processed_events.event_id`` and
``reward_commands.command_id`` are the idempotency keys of the scoring agent.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "games",
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("api_key_prefix", sa.String(length=16), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("key_rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("game_id", name=op.f("pk_games")),
        sa.UniqueConstraint("api_key_hash", name=op.f("uq_games_api_key_hash")),
    )
    op.create_table(
        "player_totals",
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("player_id", sa.String(length=128), nullable=False),
        sa.Column("events", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("matches", sa.Integer(), server_default="0", nullable=False),
        sa.Column("wins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("losses", sa.Integer(), server_default="0", nullable=False),
        sa.Column("draws", sa.Integer(), server_default="0", nullable=False),
        sa.Column("total_score", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("best_score", sa.BigInteger(), nullable=True),
        sa.Column("purchases", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "token_spent", sa.Numeric(precision=38, scale=18), server_default="0", nullable=False
        ),
        sa.Column("achievements", sa.Integer(), server_default="0", nullable=False),
        sa.Column("sessions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("play_seconds", sa.Double(), server_default="0", nullable=False),
        sa.Column("first_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("game_id", "player_id", name=op.f("pk_player_totals")),
    )
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("player_id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="client time corrected for clock skew",
        ),
        sa.Column(
            "client_occurred_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="occurred_at as the client sent it",
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("source_partition", sa.SmallInteger(), nullable=False),
        sa.Column("source_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_processed_events")),
    )
    op.create_index(
        "ix_processed_events_game_player",
        "processed_events",
        ["game_id", "player_id"],
        unique=False,
    )
    op.create_table(
        "reward_commands",
        sa.Column("command_id", sa.Uuid(), nullable=False),
        sa.Column("source_event_id", sa.Uuid(), nullable=False),
        sa.Column(
            "action",
            sa.Enum("mint", "burn", name="reward_action", native_enum=False, length=8),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "submitted",
                "confirmed",
                "failed",
                name="reward_status",
                native_enum=False,
                length=16,
            ),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("player_id", sa.String(length=128), nullable=False),
        sa.Column("token", sa.String(length=10), nullable=False),
        sa.Column("amount", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("command_id", name=op.f("pk_reward_commands")),
    )
    op.create_index(
        op.f("ix_reward_commands_source_event_id"),
        "reward_commands",
        ["source_event_id"],
        unique=False,
    )
    op.create_index(op.f("ix_reward_commands_status"), "reward_commands", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_reward_commands_status"), table_name="reward_commands")
    op.drop_index(op.f("ix_reward_commands_source_event_id"), table_name="reward_commands")
    op.drop_table("reward_commands")
    op.drop_index("ix_processed_events_game_player", table_name="processed_events")
    op.drop_table("processed_events")
    op.drop_table("player_totals")
    op.drop_table("games")
