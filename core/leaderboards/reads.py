"""Reading leaderboards: standings a page at a time, a player's rank and neighbours.

Every function takes a SQLAlchemy ``Connection``. Pages are keyset ranges of the best-first
index of ``leaderboard_records``, continued by opaque cursors; a rank is a sum over the rank
blocks (``core.leaderboards.blocks``) plus a count inside one block.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, ValidationError
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from core.identity.ids import PLAYER_ID_PATTERN
from core.leaderboards.blocks import FIRST_BLOCK_LOWER, RankTuple
from core.leaderboards.definitions import (
    LeaderboardDefinition,
    current_board_period,
    get_leaderboard,
)
from core.leaderboards.errors import InvalidCursor, UnknownLeaderboard, UnknownPeriod
from core.leaderboards.models import periods_table
from core.leaderboards.rules import (
    LEADERBOARD_ID_PATTERN,
    SCORE_MAX,
    SCORE_MIN,
    Period,
    SortOrder,
    scheduled_period,
)


@dataclass(frozen=True)
class RankedRecord:
    rank: int
    owner_id: str
    score: int
    num_score: int
    reached_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Standings:
    leaderboard_id: str
    period: Period
    records: list[RankedRecord]
    next_cursor: str | None


class _CursorBody(BaseModel):
    """Where a page ended: the last record's rank tuple and rank, in one leaderboard period."""

    lb: str = Field(pattern=LEADERBOARD_ID_PATTERN)
    ps: AwareDatetime
    pe: AwareDatetime | None
    k: int = Field(ge=SCORE_MIN, le=SCORE_MAX)
    r: AwareDatetime
    o: str = Field(pattern=PLAYER_ID_PATTERN)
    n: int = Field(ge=1, le=2**62)


def _encode_cursor(leaderboard_id: str, period: Period, last: RankTuple, rank: int) -> str:
    body = _CursorBody(
        lb=leaderboard_id, ps=period.start, pe=period.end, k=last[0], r=last[1], o=last[2], n=rank
    )
    return base64.urlsafe_b64encode(body.model_dump_json().encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, leaderboard_id: str) -> _CursorBody:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = _CursorBody.model_validate_json(raw)
    except (binascii.Error, ValueError, ValidationError):
        raise InvalidCursor(
            "cursor is not one this API returned; pass next_cursor unchanged"
        ) from None
    if body.lb != leaderboard_id:
        raise InvalidCursor(f"cursor belongs to leaderboard {body.lb!r}, not {leaderboard_id!r}")
    if not all(_representable(t) for t in (body.ps, body.pe, body.r) if t is not None):
        raise InvalidCursor("cursor is not one this API returned; pass next_cursor unchanged")
    return body


def _representable(moment: datetime) -> bool:
    """Whether ``moment`` exists in UTC (``0001-01-01T00:00+23:59`` is before year 1 there,
    which neither Python nor PostgreSQL can hold)."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return True


def resolve_period(
    conn: Connection,
    board: LeaderboardDefinition,
    period_start: datetime | None,
    now: datetime | None = None,
) -> Period:
    """The period asked for: the current one when ``period_start`` is None."""
    if period_start is None:
        return current_board_period(board, now)
    if not _representable(period_start):
        raise UnknownPeriod(
            f"leaderboard {board.id!r} has no period starting at {period_start.isoformat()}"
        )
    periods = periods_table.c
    row = conn.execute(
        select(periods.period_start, periods.period_end).where(
            periods.leaderboard_id == board.id, periods.period_start == period_start
        )
    ).first()
    if row is None:
        raise UnknownPeriod(
            f"leaderboard {board.id!r} has no period starting at {period_start.isoformat()};"
            f" its periods are listed at GET /v1/leaderboards/{board.id}/periods"
        )
    return Period(row.period_start, row.period_end)


def _ranked(row: Any, rank: int) -> RankedRecord:
    return RankedRecord(
        rank, row.owner_id, row.score, row.num_score, row.reached_at, row.updated_at
    )


@dataclass(frozen=True)
class _Shape:
    """The parts of a definition that never change once created (no API updates them)."""

    id: str
    sort_order: SortOrder
    reset_schedule: str | None


_SHAPES: dict[tuple[str, str], _Shape] = {}


def _shape(conn: Connection, leaderboard_id: str) -> _Shape:
    """A definition's fixed parts, cached per database so reads skip a round trip."""
    key = (str(conn.engine.url), leaderboard_id)
    shape = _SHAPES.get(key)
    if shape is None:
        board = get_leaderboard(conn, leaderboard_id)
        shape = _Shape(board.id, board.sort_order, board.reset_schedule)
        if len(_SHAPES) >= 10_000:
            _SHAPES.clear()
        _SHAPES[key] = shape
    return shape


def _period_params(
    conn: Connection,
    leaderboard_id: str,
    period_start: datetime | None,
    now: datetime | None,
) -> tuple[dict[str, Any], datetime | None]:
    """Bind values (:lb, :ps, :cron_start) of a read and the end of the period they select.

    A named period (:ps) is checked against ``leaderboard_periods``. Otherwise the query
    itself takes the current one: the later of the stored current start and the cron start
    at ``now`` (:cron_start), so a scheduled reset shows before anything is written.
    """
    shape = _shape(conn, leaderboard_id)
    if period_start is not None:
        board = get_leaderboard(conn, leaderboard_id)
        period = resolve_period(conn, board, period_start, now)
        return {"lb": shape.id, "ps": period.start, "cron_start": None}, period.end
    scheduled = scheduled_period(shape.reset_schedule, now or datetime.now(UTC))
    return {"lb": shape.id, "ps": None, "cron_start": scheduled.start}, scheduled.end


# The reads of the records stay raw SQL, as measured by bench/leaderboard.py: each bound is a
# row comparison in the best-first index's own order (owner ids in "C" collation), which
# PostgreSQL turns into one index range, and the current period is resolved in the same
# statement (one round trip per read).

# A page after the key (:k, :r, :o), with the period start even when the page is empty.
_PAGE_SQL = text(
    "SELECT p.ps, r.owner_id, r.score, r.num_score, r.reached_at, r.updated_at, r.sort_key"
    " FROM (SELECT COALESCE(CAST(:ps AS timestamptz), (SELECT GREATEST(period_start,"
    " CAST(:cron_start AS timestamptz)) FROM leaderboards WHERE id = :lb)) AS ps) AS p"
    " LEFT JOIN LATERAL (SELECT owner_id, score, num_score, reached_at, updated_at, sort_key"
    "  FROM leaderboard_records WHERE leaderboard_id = :lb AND period_start = p.ps"
    '  AND (sort_key, reached_at, owner_id) > (:k, :r, :o COLLATE "C")'
    "  ORDER BY sort_key, reached_at, owner_id LIMIT :limit) AS r ON true"
)
# Records strictly after / before the key (:k, :r, :o) in period :ps, nearest first.
_AFTER_SQL = text(
    "SELECT owner_id, score, num_score, reached_at, updated_at, sort_key"
    " FROM leaderboard_records WHERE leaderboard_id = :lb AND period_start = :ps"
    ' AND (sort_key, reached_at, owner_id) > (:k, :r, :o COLLATE "C")'
    " ORDER BY sort_key, reached_at, owner_id LIMIT :limit"
)
_BEFORE_SQL = text(
    "SELECT owner_id, score, num_score, reached_at, updated_at, sort_key"
    " FROM leaderboard_records WHERE leaderboard_id = :lb AND period_start = :ps"
    ' AND (sort_key, reached_at, owner_id) < (:k, :r, :o COLLATE "C")'
    " ORDER BY sort_key DESC, reached_at DESC, owner_id DESC LIMIT :limit"
)


def top(
    conn: Connection,
    leaderboard_id: str,
    *,
    limit: int = 100,
    cursor: str | None = None,
    period_start: datetime | None = None,
    now: datetime | None = None,
) -> Standings:
    """A page of standings, best first; ``next_cursor`` continues after the last record.

    Pages are keyset ranges of the best-first index, so a record shows up on one page only
    even while scores change; the ranks of later pages continue from the cursor.
    """
    if cursor:
        after = _decode_cursor(cursor, leaderboard_id)
        params: dict[str, Any] = {"lb": _shape(conn, leaderboard_id).id, "ps": after.ps}
        params["cron_start"] = None
        end, key, first_rank = after.pe, (after.k, after.r, after.o), after.n + 1
    else:
        params, end = _period_params(conn, leaderboard_id, period_start, now)
        key, first_rank = FIRST_BLOCK_LOWER, 1
    rows = conn.execute(
        _PAGE_SQL, {**params, "k": key[0], "r": key[1], "o": key[2], "limit": limit + 1}
    ).all()
    if not rows or rows[0].ps is None:
        raise UnknownLeaderboard(f"no leaderboard {leaderboard_id!r}")
    period = Period(rows[0].ps, end)
    page = [row for row in rows[:limit] if row.owner_id is not None]
    records = [_ranked(row, first_rank + i) for i, row in enumerate(page)]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = _encode_cursor(
            leaderboard_id,
            period,
            (last.sort_key, last.reached_at, last.owner_id),
            records[-1].rank,
        )
    return Standings(leaderboard_id, period, records, next_cursor)


# One owner's record and rank: blocks before theirs, plus a count inside their block.
_RANK_SQL = text(
    "SELECT me.period_start, me.owner_id, me.score, me.num_score, me.reached_at,"
    " me.updated_at, me.sort_key,"
    " 1 + (SELECT coalesce(sum(b.size), 0) FROM leaderboard_rank_blocks b"
    "  WHERE b.leaderboard_id = :lb AND b.period_start = me.period_start"
    "  AND (b.lower_sort_key, b.lower_reached_at, b.lower_owner_id) < (blk.k, blk.r, blk.o))"
    " + (SELECT count(*) FROM leaderboard_records r"
    "  WHERE r.leaderboard_id = :lb AND r.period_start = me.period_start"
    "  AND (r.sort_key, r.reached_at, r.owner_id) >= (blk.k, blk.r, blk.o)"
    "  AND (r.sort_key, r.reached_at, r.owner_id) < (me.sort_key, me.reached_at, me.owner_id))"
    " AS rank"
    " FROM leaderboard_records me CROSS JOIN LATERAL ("
    "  SELECT b.lower_sort_key AS k, b.lower_reached_at AS r, b.lower_owner_id AS o"
    "  FROM leaderboard_rank_blocks b"
    "  WHERE b.leaderboard_id = :lb AND b.period_start = me.period_start"
    "  AND (b.lower_sort_key, b.lower_reached_at, b.lower_owner_id)"
    "   <= (me.sort_key, me.reached_at, me.owner_id)"
    "  ORDER BY b.lower_sort_key DESC, b.lower_reached_at DESC, b.lower_owner_id DESC"
    "  LIMIT 1) AS blk"
    " WHERE me.leaderboard_id = :lb AND me.owner_id = :owner"
    " AND me.period_start = COALESCE(CAST(:ps AS timestamptz), (SELECT GREATEST(period_start,"
    " CAST(:cron_start AS timestamptz)) FROM leaderboards WHERE id = :lb))"
)


def rank_of(
    conn: Connection,
    leaderboard_id: str,
    owner_id: str,
    *,
    period_start: datetime | None = None,
    now: datetime | None = None,
) -> RankedRecord | None:
    """The owner's record and exact rank in the period, or None if they have no record."""
    params, _ = _period_params(conn, leaderboard_id, period_start, now)
    row = conn.execute(_RANK_SQL, {**params, "owner": owner_id}).first()
    return _ranked(row, int(row.rank)) if row else None


def around(
    conn: Connection,
    leaderboard_id: str,
    owner_id: str,
    *,
    limit: int = 10,
    period_start: datetime | None = None,
    now: datetime | None = None,
) -> list[RankedRecord]:
    """The owner and up to ``limit`` records either side, best first (empty: no record)."""
    params, _ = _period_params(conn, leaderboard_id, period_start, now)
    row = conn.execute(_RANK_SQL, {**params, "owner": owner_id}).first()
    if row is None:
        return []
    me = _ranked(row, int(row.rank))
    neighbours = {
        "lb": params["lb"],
        "ps": row.period_start,
        "k": row.sort_key,
        "r": row.reached_at,
        "o": row.owner_id,
        "limit": limit,
    }
    above = conn.execute(_BEFORE_SQL, neighbours).all()
    below = conn.execute(_AFTER_SQL, neighbours).all()
    return (
        [_ranked(r, me.rank - i - 1) for i, r in reversed(list(enumerate(above)))]
        + [me]
        + [_ranked(r, me.rank + i + 1) for i, r in enumerate(below)]
    )
