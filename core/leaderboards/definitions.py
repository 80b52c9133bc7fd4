"""Leaderboard definitions and their periods in PostgreSQL: create, list, get, reset.

Every function takes a SQLAlchemy ``Connection`` and runs inside the caller's transaction.
The rules (operators, tie-breaks, periods) come from ``core.leaderboards.rules``.

A definition's ``period_start`` is the start of its current period: a reset (on demand, or
a scheduled one the writer applies lazily) archives every period before it. Opening a
period also opens its first rank block (``core.leaderboards.blocks``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from core.events.models import Game
from core.leaderboards.blocks import _open_first_blocks
from core.leaderboards.errors import (
    InvalidDefinition,
    LeaderboardExists,
    PeriodNotStarted,
    TooManyLeaderboards,
    UnknownLeaderboard,
)
from core.leaderboards.models import (
    leaderboards_table,
    periods_table,
    rank_blocks_table,
    records_table,
)
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

# Every score of a game goes to each of its leaderboards (one row each, in the scoring
# transaction): a game may have at most this many.
MAX_PER_GAME = 100


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

_boards = leaderboards_table.c


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
        raise InvalidDefinition(
            f"leaderboard id {leaderboard_id!r} must match {LEADERBOARD_ID_PATTERN}"
        )
    schedule = validate_schedule(reset_schedule) if reset_schedule else None
    # The game's row locked: two creations of one game are counted one after the other.
    game = select(Game.game_id).where(Game.game_id == game_id).with_for_update()
    if not conn.execute(game).first():
        raise InvalidDefinition(f"no game {game_id!r}: register the game first")
    boards = conn.execute(
        select(func.count()).select_from(leaderboards_table).where(_boards.game_id == game_id)
    ).scalar_one()
    if boards >= MAX_PER_GAME:
        raise TooManyLeaderboards(
            f"game {game_id!r} has {boards} leaderboards, the most a game may have"
            f" ({MAX_PER_GAME}): every score goes to each of them; delete one first"
        )
    period = scheduled_period(schedule, now)
    row = conn.execute(
        insert(leaderboards_table)
        .values(
            id=leaderboard_id,
            game_id=game_id,
            sort_order=sort_order,
            operator=operator,
            reset_schedule=schedule,
            metadata=metadata or {},
            period_start=period.start,
        )
        .on_conflict_do_nothing(index_elements=[_boards.id])
        .returning(leaderboards_table)
    ).first()
    if row is None:
        raise LeaderboardExists(f"leaderboard {leaderboard_id!r} already exists")
    _open_periods(conn, [(leaderboard_id, period)])
    return _definition(row)


def get_leaderboard(conn: Connection, leaderboard_id: str) -> LeaderboardDefinition:
    return _definition(_board_row(conn, leaderboard_id))


def _board_row(conn: Connection, leaderboard_id: str, *, lock: bool = False) -> Any:
    """The definition's row, locked for the transaction with ``lock``; raises if none."""
    query = select(leaderboards_table).where(_boards.id == leaderboard_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise UnknownLeaderboard(f"no leaderboard {leaderboard_id!r}")
    return row


def list_leaderboards(
    conn: Connection,
    game_id: str | None = None,
    *,
    limit: int | None = None,
    after: str | None = None,
) -> list[LeaderboardDefinition]:
    """By (game, id); at most ``limit``, those after the leaderboard ``after`` in that
    order (the last one of the previous page; an unknown id: UnknownLeaderboard)."""
    query = select(leaderboards_table).order_by(_boards.game_id, _boards.id)
    if game_id is not None:
        query = query.where(_boards.game_id == game_id)
    if after is not None:
        last = _board_row(conn, after)
        query = query.where(tuple_(_boards.game_id, _boards.id) > tuple_(last.game_id, last.id))
    if limit is not None:
        query = query.limit(limit)
    return [_definition(row) for row in conn.execute(query)]


_LOCK_BOARDS_OF_GAMES = (
    select(leaderboards_table)
    .where(_boards.game_id.in_(bindparam("games", expanding=True)))
    .order_by(_boards.id)
    .with_for_update()
)


def _lock_leaderboards(conn: Connection, game_ids: Iterable[str]) -> list[LeaderboardDefinition]:
    """Lock the definitions of these games (in id order, so writers never deadlock)."""
    rows = conn.execute(_LOCK_BOARDS_OF_GAMES, {"games": sorted(set(game_ids))})
    return [_definition(row) for row in rows]


# ---- periods -------------------------------------------------------------------------------


_periods = periods_table.c
_OPEN_PERIOD = insert(periods_table).on_conflict_do_nothing()


def _open_periods(conn: Connection, periods: Iterable[tuple[str, Period]]) -> None:
    """Add these periods (when new) and the first, empty rank block of each."""
    items = sorted(set(periods), key=lambda item: (item[0], item[1].start))
    if not items:
        return
    conn.execute(
        _OPEN_PERIOD,
        [{"leaderboard_id": lb, "period_start": p.start, "period_end": p.end} for lb, p in items],
    )
    _open_first_blocks(conn, [(lb, p.start) for lb, p in items])


def _archive_until(
    conn: Connection, board: LeaderboardDefinition, new_start: datetime, now: datetime
) -> list[datetime]:
    """Close every period of ``board`` before ``new_start`` and make it the current start."""
    archived = conn.execute(
        update(periods_table)
        .where(
            _periods.leaderboard_id == board.id,
            _periods.period_start < new_start,
            _periods.archived_at.is_(None),
        )
        .values(archived_at=now, period_end=func.least(_periods.period_end, new_start))
        .returning(_periods.period_start)
    ).scalars()
    starts = sorted(archived)
    conn.execute(
        update(leaderboards_table).where(_boards.id == board.id).values(period_start=new_start)
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
    board = _definition(_board_row(conn, leaderboard_id, lock=True))
    current = current_board_period(board, now)
    if period_start is not None:
        if period_start < board.period_start:
            return ResetOutcome(
                board.id, [], board.period_start, f"period {period_start.isoformat()} is archived"
            )
        if period_start > current.start:
            raise PeriodNotStarted(
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
    records = records_table.c
    has_records = conn.execute(
        select(records.owner_id)
        .where(records.leaderboard_id == board.id, records.period_start == current.start)
        .limit(1)
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
    blocks = rank_blocks_table.c
    # The block sizes add up to the record count, without counting a million rows.
    records = (
        select(func.coalesce(func.sum(blocks.size), 0))
        .where(
            blocks.leaderboard_id == _periods.leaderboard_id,
            blocks.period_start == _periods.period_start,
        )
        .scalar_subquery()
    )
    rows = conn.execute(
        select(
            _periods.period_start,
            _periods.period_end,
            _periods.archived_at,
            records.label("records"),
        )
        .where(_periods.leaderboard_id == leaderboard_id)
        .order_by(_periods.period_start.desc())
    )
    return [PeriodSummary(r.period_start, r.period_end, r.archived_at, r.records) for r in rows]


def current_board_period(board: LeaderboardDefinition, now: datetime | None = None) -> Period:
    """The period open at ``now``: a due scheduled reset shows at once, before any write."""
    return current_period(board.reset_schedule, board.period_start, now or datetime.now(UTC))
