"""Tables of the leaderboards: definitions, periods, records per period, applied submissions
and the rank blocks that make a player's rank a small sum instead of a long count.

Archived periods live in the same ``leaderboard_records`` table, keyed by ``period_start``,
so a past period's standings use the same index and queries as the current one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.leaderboards.rules import Operator, SortOrder
from core.platform.db import Base


class Leaderboard(Base):
    """A leaderboard definition of one game."""

    __tablename__ = "leaderboards"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    game_id: Mapped[str] = mapped_column(ForeignKey("games.game_id"), index=True)
    sort_order: Mapped[SortOrder] = mapped_column(
        Enum(SortOrder, name="leaderboard_sort_order", native_enum=False, length=8)
    )
    operator: Mapped[Operator] = mapped_column(
        Enum(Operator, name="leaderboard_operator", native_enum=False, length=8)
    )
    reset_schedule: Mapped[str | None] = mapped_column(String(128))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Start of the current period; every earlier period is archived (read-only).
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def __str__(self) -> str:
        return f"leaderboard {self.id} ({self.game_id})"


class LeaderboardPeriod(Base):
    """A period of a leaderboard: open while ``archived_at`` is null."""

    __tablename__ = "leaderboard_periods"

    leaderboard_id: Mapped[str] = mapped_column(
        ForeignKey("leaderboards.id", ondelete="CASCADE"), primary_key=True
    )
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __str__(self) -> str:
        return f"{self.leaderboard_id} from {self.period_start:%Y-%m-%d %H:%M}"


class LeaderboardRecord(Base):
    """One owner's standing in one period of a leaderboard."""

    __tablename__ = "leaderboard_records"
    __table_args__ = (
        # Best-first order of a period; every rank and page query is a range of it.
        Index(
            "ix_leaderboard_records_rank",
            "leaderboard_id",
            "period_start",
            "sort_key",
            "reached_at",
            "owner_id",
        ),
    )

    leaderboard_id: Mapped[str] = mapped_column(
        ForeignKey("leaderboards.id", ondelete="CASCADE"), primary_key=True
    )
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    # Byte order, so ties sort the same everywhere and the bound checks match the index.
    owner_id: Mapped[str] = mapped_column(String(128, collation="C"), primary_key=True)
    score: Mapped[int] = mapped_column(BigInteger)
    # The score negated on descending boards, so one ascending index serves both orders.
    sort_key: Mapped[int] = mapped_column(BigInteger)
    num_score: Mapped[int] = mapped_column(Integer)
    reached_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)

    def __str__(self) -> str:
        return f"{self.owner_id}: {self.score} on {self.leaderboard_id}"


class LeaderboardSubmission(Base):
    """Each event applied to a leaderboard, once: the idempotency key of the writer."""

    __tablename__ = "leaderboard_submissions"

    leaderboard_id: Mapped[str] = mapped_column(
        ForeignKey("leaderboards.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(128))
    score: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The period it counted in; null when its period was already archived (not counted).
    period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LeaderboardRankBlock(Base):
    """How many records of a period sort at or after ``lower_*`` and before the next block.

    Blocks partition a period's best-first order into runs of about a thousand records;
    a rank is the sum of the sizes of the blocks before the owner's block plus a count
    inside it. Sizes are kept exact by the writer, in the writer's transaction.
    """

    __tablename__ = "leaderboard_rank_blocks"
    __table_args__ = (
        UniqueConstraint(
            "leaderboard_id",
            "period_start",
            "lower_sort_key",
            "lower_reached_at",
            "lower_owner_id",
            name="uq_leaderboard_rank_blocks_lower_bound",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    leaderboard_id: Mapped[str] = mapped_column(ForeignKey("leaderboards.id", ondelete="CASCADE"))
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lower_sort_key: Mapped[int] = mapped_column(BigInteger)
    lower_reached_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lower_owner_id: Mapped[str] = mapped_column(String(128, collation="C"))
    size: Mapped[int] = mapped_column(Integer)


# The tables as Core ``Table`` objects for the statements of definitions, writer, blocks and
# reads (``Model.__table__`` is typed as a plain FromClause, which insert/update refuse).
leaderboards_table = cast(Table, Leaderboard.__table__)
periods_table = cast(Table, LeaderboardPeriod.__table__)
records_table = cast(Table, LeaderboardRecord.__table__)
submissions_table = cast(Table, LeaderboardSubmission.__table__)
rank_blocks_table = cast(Table, LeaderboardRankBlock.__table__)
