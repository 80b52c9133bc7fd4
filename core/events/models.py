"""Tables of the streaming spine: games and their API keys, processed events, player totals,
reward commands. PostgreSQL is the source of truth; every write is keyed for idempotency."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Double,
    Enum,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.platform.db import Base
from core.rewards.commands import RewardAction, RewardStatus

TOKEN_AMOUNT = Numeric(38, 18)


class Game(Base):
    """A game whose servers may post events; only the SHA-256 of its API key is stored."""

    __tablename__ = "games"

    game_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_prefix: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    key_rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __str__(self) -> str:
        return f"{self.name} ({self.game_id})"


class ProcessedEvent(Base):
    """Every game event applied to the totals, once: ``(game_id, event_id)`` is the dedupe key."""

    __tablename__ = "processed_events"
    __table_args__ = (
        # The admin panel's sort and search at 10 M rows (migration 0012).
        Index("ix_processed_events_occurred_at", "occurred_at"),
        Index("ix_processed_events_event_id", "event_id"),
        # A player's events (player and game equal) and the search by a player id or its
        # beginning, in one index (migration 0024).
        Index(
            "ix_processed_events_player_game",
            "player_id",
            "game_id",
            postgresql_ops={"player_id": "varchar_pattern_ops"},
        ),
    )

    # Unique per game: each game picks its own event ids (migration 0010).
    game_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    player_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), comment="client time corrected for clock skew"
    )
    client_occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), comment="occurred_at as the client sent it"
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    source_partition: Mapped[int] = mapped_column(SmallInteger)
    source_offset: Mapped[int] = mapped_column(BigInteger)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id} of {self.player_id}"


class PlayerTotals(Base):
    """Running totals of one player in one game, built from processed events."""

    __tablename__ = "player_totals"
    # The admin home page's active players today / last 7 days (migration 0012).
    __table_args__ = (Index("ix_player_totals_last_event_at", "last_event_at"),)

    game_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    player_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger, server_default="0")
    matches: Mapped[int] = mapped_column(Integer, server_default="0")
    wins: Mapped[int] = mapped_column(Integer, server_default="0")
    losses: Mapped[int] = mapped_column(Integer, server_default="0")
    draws: Mapped[int] = mapped_column(Integer, server_default="0")
    total_score: Mapped[int] = mapped_column(BigInteger, server_default="0")
    best_score: Mapped[int | None] = mapped_column(BigInteger)
    purchases: Mapped[int] = mapped_column(Integer, server_default="0")
    token_spent: Mapped[Decimal] = mapped_column(TOKEN_AMOUNT, server_default="0")
    achievements: Mapped[int] = mapped_column(Integer, server_default="0")
    sessions: Mapped[int] = mapped_column(Integer, server_default="0")
    play_seconds: Mapped[float] = mapped_column(Double, server_default="0")
    first_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def __str__(self) -> str:
        return f"{self.player_id} in {self.game_id}"


class RewardCommandRow(Base):
    """A mint/burn command published to rewards.commands.v1; a later step executes it."""

    __tablename__ = "reward_commands"

    command_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    source_event_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    action: Mapped[RewardAction] = mapped_column(
        Enum(RewardAction, name="reward_action", native_enum=False, length=8)
    )
    status: Mapped[RewardStatus] = mapped_column(
        Enum(RewardStatus, name="reward_status", native_enum=False, length=24),
        server_default=RewardStatus.pending.value,
        index=True,
    )
    game_id: Mapped[str] = mapped_column(String(64))
    player_id: Mapped[str] = mapped_column(String(128))
    token: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Decimal] = mapped_column(TOKEN_AMOUNT)
    reason: Mapped[str] = mapped_column(String(128))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def __str__(self) -> str:
        return f"{self.action} {self.amount} {self.token} to {self.player_id} ({self.status})"
