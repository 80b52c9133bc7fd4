"""Battles: player profiles with ratings and records, battles (queued, resolved or rejected
with the seed and engine version), rating history, matchmaking tickets. Only new tables;
a downgrade drops them.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "players",
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("player_id", sa.String(length=128), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("mu", sa.Double(), nullable=False),
        sa.Column("sigma", sa.Double(), nullable=False),
        sa.Column("battles", sa.Integer(), server_default="0", nullable=False),
        sa.Column("wins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("losses", sa.Integer(), server_default="0", nullable=False),
        _now("created_at"),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("game_id", "player_id", name=op.f("pk_players")),
    )
    op.create_table(
        "battles",
        sa.Column("battle_id", sa.Uuid(), nullable=False),
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=64), nullable=False),
        sa.Column(
            "sides",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="player ids per side",
        ),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "resolved",
                "rejected",
                name="battle_status",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=500), nullable=True, comment="why it was rejected"),
        sa.Column(
            "result",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=True,
            comment="ranks and win probabilities per side",
        ),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("engine_version", sa.SmallInteger(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("battle_id", name=op.f("pk_battles")),
        sa.UniqueConstraint("game_id", "idempotency_key", name="uq_battles_game_idempotency_key"),
    )
    op.create_index(
        "ix_battles_game_requested_at", "battles", ["game_id", "requested_at"], unique=False
    )
    op.create_table(
        "rating_history",
        sa.Column("battle_id", sa.Uuid(), nullable=False),
        sa.Column("player_id", sa.String(length=128), nullable=False),
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.SmallInteger(), nullable=False),
        sa.Column("mu_before", sa.Double(), nullable=False),
        sa.Column("sigma_before", sa.Double(), nullable=False),
        sa.Column("mu_after", sa.Double(), nullable=False),
        sa.Column("sigma_after", sa.Double(), nullable=False),
        _now("rated_at"),
        sa.PrimaryKeyConstraint("battle_id", "player_id", name=op.f("pk_rating_history")),
    )
    op.create_index(
        "ix_rating_history_player",
        "rating_history",
        ["game_id", "player_id", "rated_at"],
        unique=False,
    )

    op.create_table(
        "match_tickets",
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=64), nullable=False),
        sa.Column("player_id", sa.String(length=128), nullable=False),
        sa.Column(
            "mu", sa.Double(), nullable=False, comment="the player's rating when they joined"
        ),
        sa.Column(
            "status",
            sa.Enum(
                "waiting", "matched", "expired", name="ticket_status", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("battle_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_match_tickets")),
    )
    op.create_index(
        "uq_match_tickets_waiting_player",
        "match_tickets",
        ["game_id", "player_id"],
        unique=True,
        postgresql_where=sa.text("status = 'waiting'"),
    )
    op.create_index(
        "ix_match_tickets_queue",
        "match_tickets",
        ["game_id", "mode", "status", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_match_tickets_queue", table_name="match_tickets")
    op.drop_index("uq_match_tickets_waiting_player", table_name="match_tickets")
    op.drop_table("match_tickets")
    op.drop_index("ix_rating_history_player", table_name="rating_history")
    op.drop_table("rating_history")
    op.drop_index("ix_battles_game_requested_at", table_name="battles")
    op.drop_table("battles")
    op.drop_table("players")
