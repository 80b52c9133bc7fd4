"""Tables of battles: player profiles with their rating and record, battles from queued to
resolved or rejected, and every rating change (one row per battle and player)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Double,
    Enum,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.platform.db import Base


class BattleStatus(enum.StrEnum):
    queued = "queued"
    resolved = "resolved"
    rejected = "rejected"


class Player(Base):
    """A game's player as battles know it: display name, rating (Weng-Lin mu/sigma), record.
    Created by the game server or on a player's first battle."""

    __tablename__ = "players"

    game_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    player_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(64))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    mu: Mapped[float] = mapped_column(Double)
    sigma: Mapped[float] = mapped_column(Double)
    battles: Mapped[int] = mapped_column(Integer, server_default="0")
    wins: Mapped[int] = mapped_column(Integer, server_default="0")
    losses: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def __str__(self) -> str:
        return f"{self.display_name} ({self.game_id}/{self.player_id})"


class Battle(Base):
    """One battle: queued by the API, resolved (or rejected with a reason) by the engine."""

    __tablename__ = "battles"
    __table_args__ = (
        UniqueConstraint("game_id", "idempotency_key", name="uq_battles_game_idempotency_key"),
        Index("ix_battles_game_requested_at", "game_id", "requested_at"),
    )

    battle_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    game_id: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(64))
    sides: Mapped[list[Any]] = mapped_column(JSONB, comment="player ids per side")
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[BattleStatus] = mapped_column(
        Enum(BattleStatus, name="battle_status", native_enum=False, length=16)
    )
    reason: Mapped[str | None] = mapped_column(String(500), comment="why it was rejected")
    result: Mapped[dict[str, Any] | None] = mapped_column(
        JSONB, comment="ranks and win probabilities per side"
    )
    seed: Mapped[int | None] = mapped_column(BigInteger)
    engine_version: Mapped[int | None] = mapped_column(SmallInteger)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RatingChange(Base):
    """A player's rating before and after one battle: applied once per (battle, player)."""

    __tablename__ = "rating_history"
    __table_args__ = (Index("ix_rating_history_player", "game_id", "player_id", "rated_at"),)

    battle_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    player_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    game_id: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int] = mapped_column(SmallInteger)
    mu_before: Mapped[float] = mapped_column(Double)
    sigma_before: Mapped[float] = mapped_column(Double)
    mu_after: Mapped[float] = mapped_column(Double)
    sigma_after: Mapped[float] = mapped_column(Double)
    rated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TicketStatus(enum.StrEnum):
    waiting = "waiting"
    matched = "matched"
    expired = "expired"


class MatchTicket(Base):
    """A player waiting for a battle in one game and mode; a player holds one waiting ticket
    at a time (partial unique index), and a matched ticket names its battle."""

    __tablename__ = "match_tickets"
    __table_args__ = (
        Index(
            "uq_match_tickets_waiting_player",
            "game_id",
            "player_id",
            unique=True,
            postgresql_where=text("status = 'waiting'"),
        ),
        Index("ix_match_tickets_queue", "game_id", "mode", "status", "created_at"),
    )

    ticket_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    game_id: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(64))
    player_id: Mapped[str] = mapped_column(String(128))
    mu: Mapped[float] = mapped_column(Double, comment="the player's rating when they joined")
    status: Mapped[TicketStatus] = mapped_column(
        Enum(TicketStatus, name="ticket_status", native_enum=False, length=16)
    )
    battle_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
