"""Leaderboard definitions and their periods in PostgreSQL: create, list, get, reset.

Every function takes a SQLAlchemy ``Connection`` and runs inside the caller's transaction.
The rules (operators, tie-breaks, periods) come from ``core.leaderboards.rules``.

A definition's ``period_start`` is the start of its current period: a reset (on demand, or
a scheduled one the writer applies lazily) archives every period before it. Opening a
period also opens its first rank block (``core.leaderboards.blocks``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.leaderboards.blocks import _open_first_blocks
from core.leaderboards.rules import (
    LEADERBOARD_ID_PATTERN,
    Operator,
    Period,
    SortOrder,
    current_period,
    scheduled_period,
    validate_schedule,
)

# Scores made before a scheduled reset still count if they are written this long after it.
ARCHIVE_GRACE = timedelta(minutes=5)


class LeaderboardError(ValueError):
    """A request the store refuses; the message says why and what to do."""


class LeaderboardExists(LeaderboardError):
    pass


class UnknownLeaderboard(LookupError):
    pass


class UnknownPeriod(LookupError):
    pass


@dataclass(frozen=True)
class LeaderboardDefinition:
    id: str
    game_id: str
    sort_order: SortOrder
    operator: Operator
    reset_schedule: str | None
    metadata: dict[str, Any]
    created_at: datetime
    period_start: datetime


@dataclass(frozen=True)
class PeriodSummary:
    start: datetime
    end: datetime | None
    archived_at: datetime | None
    records: int


@dataclass(frozen=True)
class ResetOutcome:
    leaderboard_id: str
    archived: list[datetime]  # starts of the periods archived by this call (empty: no-op)
    current_start: datetime
    reason: str


# ---- definitions ---------------------------------------------------------------------------


def _definition(row: Any) -> LeaderboardDefinition:
    return LeaderboardDefinition(
        id=row.id,
        game_id=row.game_id,
        sort_order=SortOrder(row.sort_order),
        operator=Operator(row.operator),
        reset_schedule=row.reset_schedule,
        metadata=row.metadata or {},
        created_at=row.created_at,
        period_start=row.period_start,
    )


def create_leaderboard(
    conn: Connection,
    *,
    leaderboard_id: str,
    game_id: str,
    sort_order: SortOrder = SortOrder.desc,
    operator: Operator = Operator.best,
    reset_schedule: str | None = None,
    metadata: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> LeaderboardDefinition:
    """Create a definition; its first period is the scheduled period containing ``now``."""
    now = now or datetime.now(UTC)
    if not re.match(LEADERBOARD_ID_PATTERN, leaderboard_id):
        raise LeaderboardError(
            f"leaderboard id {leaderboard_id!r} must match {LEADERBOARD_ID_PATTERN}"
        )
    schedule = validate_schedule(reset_schedule) if reset_schedule else None
    if not conn.execute(text("SELECT 1 FROM games WHERE game_id = :g"), {"g": game_id}).first():
        raise LeaderboardError(f"no game {game_id!r}: register the game first")
    period = scheduled_period(schedule, now)
    row = conn.execute(
        text(
            "INSERT INTO leaderboards (id, game_id, sort_order, operator, reset_schedule,"
            " metadata, period_start)"
            " VALUES (:id, :game, :sort, :op, :schedule, CAST(:meta AS jsonb), :start)"
            " ON CONFLICT (id) DO NOTHING RETURNING id, game_id, sort_order, operator,"
            " reset_schedule, metadata, created_at, period_start"
        ),
        {
            "id": leaderboard_id,
            "game": game_id,
            "sort": sort_order.value,
            "op": operator.value,
            "schedule": schedule,
            "meta": json.dumps(metadata or {}),
            "start": period.start,
        },
    ).first()
    if row is None:
        raise LeaderboardExists(f"leaderboard {leaderboard_id!r} already exists")
    _open_periods(conn, [(leaderboard_id, period)])
    return _definition(row)


def get_leaderboard(conn: Connection, leaderboard_id: str) -> LeaderboardDefinition:
    row = conn.execute(
        text(
            "SELECT id, game_id, sort_order, operator, reset_schedule, metadata, created_at,"
            " period_start FROM leaderboards WHERE id = :id"
        ),
        {"id": leaderboard_id},
    ).first()
    if row is None:
        raise UnknownLeaderboard(f"no leaderboard {leaderboard_id!r}")
    return _definition(row)


def list_leaderboards(conn: Connection, game_id: str | None = None) -> list[LeaderboardDefinition]:
    rows = conn.execute(
        text(
            "SELECT id, game_id, sort_order, operator, reset_schedule, metadata, created_at,"
            " period_start FROM leaderboards"
            " WHERE CAST(:game AS text) IS NULL OR game_id = :game ORDER BY game_id, id"
        ),
        {"game": game_id},
    )
    return [_definition(row) for row in rows]


def _lock_leaderboards(conn: Connection, game_ids: Iterable[str]) -> list[LeaderboardDefinition]:
    """Lock the definitions of these games (in id order, so writers never deadlock)."""
    rows = conn.execute(
        text(
            "SELECT id, game_id, sort_order, operator, reset_schedule, metadata, created_at,"
            " period_start FROM leaderboards"
            " WHERE game_id = ANY(CAST(:games AS text[])) ORDER BY id FOR UPDATE"
        ),
        {"games": sorted(set(game_ids))},
    )
    return [_definition(row) for row in rows]


# ---- periods -------------------------------------------------------------------------------


def _open_periods(conn: Connection, periods: Iterable[tuple[str, Period]]) -> None:
    """Add these periods (when new) and the first, empty rank block of each."""
    items = sorted(set(periods), key=lambda item: (item[0], item[1].start))
    if not items:
        return
    conn.execute(
        text(
            "INSERT INTO leaderboard_periods (leaderboard_id, period_start, period_end)"
            " SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:starts AS timestamptz[]),"
            " CAST(:ends AS timestamptz[])) ON CONFLICT DO NOTHING"
        ),
        {
            "ids": [lb for lb, _ in items],
            "starts": [p.start for _, p in items],
            "ends": [p.end for _, p in items],
        },
    )
    _open_first_blocks(conn, [(lb, p.start) for lb, p in items])


def _archive_until(
    conn: Connection, board: LeaderboardDefinition, new_start: datetime, now: datetime
) -> list[datetime]:
    """Close every period of ``board`` before ``new_start`` and make it the current start."""
    archived = conn.execute(
        text(
            "UPDATE leaderboard_periods SET archived_at = :now,"
            " period_end = LEAST(period_end, :new_start)"
            " WHERE leaderboard_id = :id AND period_start < :new_start AND archived_at IS NULL"
            " RETURNING period_start"
        ),
        {"id": board.id, "now": now, "new_start": new_start},
    ).scalars()
    starts = sorted(archived)
    conn.execute(
        text("UPDATE leaderboards SET period_start = :s WHERE id = :id"),
        {"id": board.id, "s": new_start},
    )
    end = scheduled_period(board.reset_schedule, new_start).end
    _open_periods(conn, [(board.id, Period(start=new_start, end=end))])
    return starts


def _due_start(board: LeaderboardDefinition, now: datetime) -> datetime | None:
    """The start a scheduled reset has moved the board to, once the grace has passed."""
    due = scheduled_period(board.reset_schedule, now - ARCHIVE_GRACE).start
    return due if due > board.period_start else None


def reset_leaderboard(
    conn: Connection,
    leaderboard_id: str,
    *,
    period_start: datetime | None = None,
    now: datetime | None = None,
) -> ResetOutcome:
    """Archive the current period and start the next one; a repeat does nothing.

    Without ``period_start``: when a scheduled reset is due (the cron time has passed
    but the board still accepts late scores for the old period), the overdue periods are
    archived; otherwise the current period ends now if it has any record (an empty one
    is left alone, so running the command twice in a row archives once).
    With ``period_start``: that period and every earlier open one are archived, and a
    repeat finds it archived and does nothing, whatever happened in between.
    """
    now = now or datetime.now(UTC)
    row = conn.execute(
        text(
            "SELECT id, game_id, sort_order, operator, reset_schedule, metadata, created_at,"
            " period_start FROM leaderboards WHERE id = :id FOR UPDATE"
        ),
        {"id": leaderboard_id},
    ).first()
    if row is None:
        raise UnknownLeaderboard(f"no leaderboard {leaderboard_id!r}")
    board = _definition(row)
    current = current_board_period(board, now)
    if period_start is not None:
        if period_start < board.period_start:
            return ResetOutcome(
                board.id, [], board.period_start, f"period {period_start.isoformat()} is archived"
            )
        if period_start > current.start:
            raise UnknownPeriod(
                f"period {period_start.isoformat()} has not started; the current period of"
                f" {board.id!r} starts {current.start.isoformat()}"
            )
        if period_start < current.start:  # an overdue scheduled period
            archived = _archive_until(conn, board, current.start, now)
            return ResetOutcome(board.id, archived, current.start, "scheduled reset")
        return _force_reset(conn, board, now)
    if current.start > board.period_start:
        archived = _archive_until(conn, board, current.start, now)
        return ResetOutcome(board.id, archived, current.start, "scheduled reset")
    has_records = conn.execute(
        text(
            "SELECT 1 FROM leaderboard_records WHERE leaderboard_id = :id"
            " AND period_start = :start LIMIT 1"
        ),
        {"id": board.id, "start": current.start},
    ).first()
    if not has_records:
        return ResetOutcome(
            board.id, [], board.period_start, "the current period has no records yet"
        )
    return _force_reset(conn, board, now)


def _force_reset(conn: Connection, board: LeaderboardDefinition, now: datetime) -> ResetOutcome:
    """End the open period now (whole seconds, so the new start is easy to type)."""
    start = now.replace(microsecond=0)
    archived = _archive_until(conn, board, start, now)
    return ResetOutcome(board.id, archived, start, "forced reset")


def list_periods(conn: Connection, leaderboard_id: str) -> list[PeriodSummary]:
    """Every period of a leaderboard, newest first, with its record count."""
    get_leaderboard(conn, leaderboard_id)
    rows = conn.execute(
        text(
            "SELECT p.period_start, p.period_end, p.archived_at,"
            # The block sizes add up to the record count, without counting a million rows.
            " (SELECT coalesce(sum(b.size), 0) FROM leaderboard_rank_blocks b"
            "  WHERE b.leaderboard_id = p.leaderboard_id AND b.period_start = p.period_start)"
            " AS records"
            " FROM leaderboard_periods p WHERE p.leaderboard_id = :id"
            " ORDER BY p.period_start DESC"
        ),
        {"id": leaderboard_id},
    )
    return [PeriodSummary(r.period_start, r.period_end, r.archived_at, r.records) for r in rows]


def current_board_period(board: LeaderboardDefinition, now: datetime | None = None) -> Period:
    """The period open at ``now``: a due scheduled reset shows at once, before any write."""
    return current_period(board.reset_schedule, board.period_start, now or datetime.now(UTC))
