"""Leaderboards in PostgreSQL: definitions, idempotent score submission, standings and ranks.

Every function takes a SQLAlchemy ``Connection`` and runs inside the caller's transaction.
The rules (operators, tie-breaks, periods) come from ``core.leaderboards.rules``.

Ranks: ``leaderboard_records`` is indexed in best-first order, so a page of the top is a
keyset range scan. A player's rank is ``1 + (records before them)``; instead of counting up
to a million index entries, ``leaderboard_rank_blocks`` splits each period's order into
blocks of about ``BLOCK_SIZE`` records whose sizes the writer keeps exact, and a rank is
the sum of the sizes of earlier blocks plus a count inside one block (docs/leaderboards.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic_core
from pydantic import AwareDatetime, BaseModel, Field, ValidationError
from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.identity.ids import PLAYER_ID_PATTERN
from core.leaderboards.rules import (
    LEADERBOARD_ID_PATTERN,
    SCORE_MAX,
    SCORE_MIN,
    Operator,
    Period,
    RecordState,
    ScoreSubmission,
    SortOrder,
    apply_submission,
    clamp_score,
    current_period,
    period_for,
    scheduled_period,
    sort_key,
    validate_schedule,
)

BLOCK_SIZE = 1000
# A block is split once it holds more than this many records.
BLOCK_SPLIT_AT = 2 * BLOCK_SIZE
# Lower bound of the first block of a period: sorts before every record.
FIRST_BLOCK_LOWER = (-(2**63), datetime(1, 1, 1, tzinfo=UTC), "")
# Scores made before a scheduled reset still count if they are written this long after it.
ARCHIVE_GRACE = timedelta(minutes=5)
# A score dated further ahead of the writer's clock is recorded but not counted: a client
# clock that far off would otherwise fill a period nobody sees yet.
FUTURE_TOLERANCE = timedelta(days=1)

RecordKey = tuple[str, datetime, str]  # leaderboard_id, period_start, owner_id
RankTuple = tuple[int, datetime, str]  # sort_key, reached_at, owner_id


class LeaderboardError(ValueError):
    """A request the store refuses; the message says why and what to do."""


class LeaderboardExists(LeaderboardError):
    pass


class UnknownLeaderboard(LookupError):
    pass


class UnknownPeriod(LookupError):
    pass


class InvalidCursor(LeaderboardError):
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
    conn.execute(
        text(
            "INSERT INTO leaderboard_rank_blocks (leaderboard_id, period_start, lower_sort_key,"
            " lower_reached_at, lower_owner_id, size)"
            " SELECT lb, ps, :k, :r, :o, 0 FROM unnest(CAST(:ids AS text[]),"
            " CAST(:starts AS timestamptz[])) AS t(lb, ps) ON CONFLICT DO NOTHING"
        ),
        {
            "ids": [lb for lb, _ in items],
            "starts": [p.start for _, p in items],
            "k": FIRST_BLOCK_LOWER[0],
            "r": FIRST_BLOCK_LOWER[1],
            "o": FIRST_BLOCK_LOWER[2],
        },
    )


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


# ---- submissions ---------------------------------------------------------------------------


def prune_submissions(conn: Connection, *, created_before: datetime | None = None) -> int:
    """Delete idempotency rows that can no longer matter; returns how many.

    Rows of archived periods (and of refused late scores) are always safe to delete: a
    replay of those events lands in an archived period and is refused again. With
    ``created_before``, rows written before that time go too, whatever their period: safe
    only if no event older than that can be replayed (e.g. the topic's retention).
    """
    result = conn.execute(
        text(
            "DELETE FROM leaderboard_submissions s USING leaderboards l"
            " WHERE s.leaderboard_id = l.id AND (s.period_start IS NULL"
            " OR s.period_start < l.period_start"
            " OR s.created_at < CAST(:before AS timestamptz))"
        ),
        {"before": created_before},
    )
    return result.rowcount


@dataclass
class _Change:
    board: LeaderboardDefinition
    period_start: datetime
    owner_id: str
    before: RecordState | None
    after: RecordState


class _PeriodCache:
    """``period_for`` of one board, remembering the last period (cron parsing is slow)."""

    def __init__(self, board: LeaderboardDefinition, now: datetime) -> None:
        self.board = board
        self.latest = now + FUTURE_TOLERANCE
        self.last: Period | None = None

    def period_of(self, at: datetime) -> Period | None:
        if at < self.board.period_start or at > self.latest:
            return None
        if self.last is None or not self.last.contains(at):
            self.last = period_for(self.board.reset_schedule, self.board.period_start, at)
        return self.last


def submit_scores(
    conn: Connection, submissions: Sequence[ScoreSubmission], *, now: datetime | None = None
) -> None:
    """Apply each submission to every leaderboard of its game, once per (leaderboard, event).

    Runs in the caller's transaction: a replay of the same events changes nothing, even for
    ``incr``. A score whose period is archived, or dated more than ``FUTURE_TOLERANCE``
    ahead, is recorded as seen but not counted.
    Writers of the same game serialise on the definitions' row locks for the transaction.
    """
    if not submissions:
        return
    for submission in submissions:
        if submission.occurred_at.tzinfo is None or not submission.owner_id:
            raise ValueError(
                f"submission {submission.event_id}: occurred_at must be timezone-aware and"
                " owner_id non-empty"
            )
    now = now or datetime.now(UTC)
    boards = _lock_leaderboards(conn, (s.game_id for s in submissions))
    if not boards:
        return
    for index, board in enumerate(boards):
        due = _due_start(board, now)
        if due is not None:
            _archive_until(conn, board, due, now)
            boards[index] = get_leaderboard(conn, board.id)
    by_game: dict[str, list[LeaderboardDefinition]] = defaultdict(list)
    for board in boards:
        by_game[board.game_id].append(board)

    periods = {board.id: _PeriodCache(board, now) for board in boards}
    targets: list[tuple[LeaderboardDefinition, ScoreSubmission, Period | None]] = [
        (board, sub, periods[board.id].period_of(sub.occurred_at))
        for sub in submissions
        for board in by_game.get(sub.game_id, ())
    ]
    if not targets:
        return
    fresh = _claim_events(conn, targets)
    counted = [(b, s, p) for b, s, p in targets if p is not None and (b.id, s.event_id) in fresh]
    if not counted:
        return
    _open_periods(conn, {(b.id, p) for b, _, p in counted if p is not None})

    keys = sorted({(b.id, p.start, s.owner_id) for b, s, p in counted if p is not None})
    states = _read_records(conn, keys)
    before = dict(states)
    boards_by_key: dict[RecordKey, LeaderboardDefinition] = {}
    claimed: set[tuple[str, uuid.UUID]] = set()
    for board, sub, period in counted:
        assert period is not None
        if (board.id, sub.event_id) in claimed:  # the same event twice in one batch
            continue
        claimed.add((board.id, sub.event_id))
        key = (board.id, period.start, sub.owner_id)
        boards_by_key[key] = board
        states[key] = apply_submission(
            states.get(key), sub.score, sub.occurred_at, board.operator, board.sort_order
        )
    changes = [
        _Change(boards_by_key[key], key[1], key[2], before.get(key), states[key])
        for key in sorted(boards_by_key)
    ]
    _write_records(conn, changes, now)
    _update_blocks(conn, changes)


def _json_rows(rows: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Rows as one JSON parameter (:rows): much cheaper to send than one array per column."""
    return {"rows": pydantic_core.to_json(list(rows)).decode()}


def _claim_events(
    conn: Connection,
    targets: list[tuple[LeaderboardDefinition, ScoreSubmission, Period | None]],
) -> set[tuple[str, uuid.UUID]]:
    """Insert one row per (leaderboard, event); return the pairs not seen before."""
    rows = conn.execute(
        text(
            "INSERT INTO leaderboard_submissions (leaderboard_id, event_id, owner_id, score,"
            " occurred_at, period_start)"
            " SELECT lb, ev, owner, score, occurred, ps"
            " FROM jsonb_to_recordset(CAST(:rows AS jsonb))"
            " AS t(lb text, ev uuid, owner text, score bigint, occurred timestamptz,"
            " ps timestamptz)"
            " ON CONFLICT DO NOTHING RETURNING leaderboard_id, event_id"
        ),
        _json_rows(
            {
                "lb": b.id,
                "ev": s.event_id,
                "owner": s.owner_id,
                "score": clamp_score(s.score),
                "occurred": s.occurred_at,
                "ps": p.start if p else None,
            }
            for b, s, p in targets
        ),
    )
    return set(rows.tuples().all())  # all(): one fetch, not one call per row


def _read_records(conn: Connection, keys: list[RecordKey]) -> dict[RecordKey, RecordState]:
    rows = conn.execute(
        text(
            "SELECT r.leaderboard_id, r.period_start, r.owner_id, r.score, r.reached_at,"
            " r.num_score FROM leaderboard_records r"
            " JOIN jsonb_to_recordset(CAST(:rows AS jsonb)) AS k(lb text, ps timestamptz,"
            " owner text)"
            " ON r.leaderboard_id = k.lb AND r.period_start = k.ps AND r.owner_id = k.owner"
        ),
        _json_rows({"lb": k[0], "ps": k[1], "owner": k[2]} for k in keys),
    )
    return {
        (lb, ps, owner): RecordState(score, reached, num)
        for lb, ps, owner, score, reached, num in rows.tuples().all()
    }


def _write_records(conn: Connection, changes: list[_Change], now: datetime) -> None:
    conn.execute(
        text(
            "INSERT INTO leaderboard_records (leaderboard_id, period_start, owner_id, score,"
            " sort_key, num_score, reached_at, updated_at)"
            " SELECT lb, ps, owner, score, skey, num, reached, CAST(:now AS timestamptz)"
            " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t(lb text, ps timestamptz,"
            " owner text, score bigint, skey bigint, num integer, reached timestamptz)"
            " ON CONFLICT (leaderboard_id, period_start, owner_id) DO UPDATE SET"
            " score = EXCLUDED.score, sort_key = EXCLUDED.sort_key,"
            " num_score = EXCLUDED.num_score, reached_at = EXCLUDED.reached_at,"
            " updated_at = EXCLUDED.updated_at"
        ),
        {
            "now": now,
            **_json_rows(
                {
                    "lb": c.board.id,
                    "ps": c.period_start,
                    "owner": c.owner_id,
                    "score": c.after.score,
                    "skey": sort_key(c.board.sort_order, c.after.score),
                    "num": c.after.num_score,
                    "reached": c.after.reached_at,
                }
                for c in changes
            ),
        },
    )


# ---- rank blocks ---------------------------------------------------------------------------


def _rank_tuple(board: LeaderboardDefinition, owner_id: str, state: RecordState) -> RankTuple:
    return (sort_key(board.sort_order, state.score), state.reached_at, owner_id)


def _blocks_of(conn: Connection, lookups: list[tuple[str, datetime, RankTuple]]) -> list[int]:
    """The id of the block holding each (leaderboard, period, rank tuple)."""
    rows = conn.execute(
        text(
            "SELECT k.i, b.id FROM jsonb_to_recordset(CAST(:rows AS jsonb))"
            " AS k(i integer, lb text, ps timestamptz, skey bigint, reached timestamptz,"
            " owner text)"
            " CROSS JOIN LATERAL (SELECT id FROM leaderboard_rank_blocks b"
            "  WHERE b.leaderboard_id = k.lb AND b.period_start = k.ps"
            "  AND (b.lower_sort_key, b.lower_reached_at, b.lower_owner_id)"
            '   <= (k.skey, k.reached, k.owner COLLATE "C")'
            "  ORDER BY b.lower_sort_key DESC, b.lower_reached_at DESC, b.lower_owner_id DESC"
            "  LIMIT 1) AS b ORDER BY k.i"
        ),
        _json_rows(
            {"i": i, "lb": lb, "ps": ps, "skey": key[0], "reached": key[1], "owner": key[2]}
            for i, (lb, ps, key) in enumerate(lookups)
        ),
    )
    return list(rows.scalars(1).all())


def _update_blocks(conn: Connection, changes: list[_Change]) -> None:
    """Move each changed record's count from its old block to its new one; split big blocks."""
    lookups: list[tuple[str, datetime, RankTuple]] = []
    signs: list[int] = []
    for change in changes:
        new = _rank_tuple(change.board, change.owner_id, change.after)
        if change.before is not None:
            old = _rank_tuple(change.board, change.owner_id, change.before)
            if old == new:
                continue
            lookups.append((change.board.id, change.period_start, old))
            signs.append(-1)
        lookups.append((change.board.id, change.period_start, new))
        signs.append(+1)
    if not lookups:
        return
    deltas: dict[int, int] = defaultdict(int)
    for block_id, sign in zip(_blocks_of(conn, lookups), signs, strict=True):
        deltas[block_id] += sign
    moved = sorted((block, delta) for block, delta in deltas.items() if delta)
    if not moved:
        return
    oversized = conn.execute(
        text(
            "UPDATE leaderboard_rank_blocks b SET size = b.size + d.delta"
            " FROM unnest(CAST(:blocks AS bigint[]), CAST(:deltas AS integer[])) AS d(id, delta)"
            " WHERE b.id = d.id RETURNING b.id, b.size"
        ),
        {"blocks": [b for b, _ in moved], "deltas": [d for _, d in moved]},
    )
    for block_id in sorted(row.id for row in oversized if row.size > BLOCK_SPLIT_AT):
        _split_block(conn, block_id)


def _split_block(conn: Connection, block_id: int) -> None:
    """Cut one block into runs of ``BLOCK_SIZE`` records (the first keeps the block's id)."""
    block = conn.execute(
        text(
            "SELECT leaderboard_id, period_start, lower_sort_key, lower_reached_at,"
            " lower_owner_id FROM leaderboard_rank_blocks WHERE id = :id"
        ),
        {"id": block_id},
    ).one()
    rows = conn.execute(
        text(
            "WITH nxt AS (SELECT lower_sort_key, lower_reached_at, lower_owner_id"
            "  FROM leaderboard_rank_blocks WHERE leaderboard_id = :lb AND period_start = :ps"
            '  AND (lower_sort_key, lower_reached_at, lower_owner_id) > (:k, :r, :o COLLATE "C")'
            "  ORDER BY lower_sort_key, lower_reached_at, lower_owner_id LIMIT 1)"
            " SELECT r.sort_key, r.reached_at, r.owner_id FROM leaderboard_records r"
            " WHERE r.leaderboard_id = :lb AND r.period_start = :ps"
            ' AND (r.sort_key, r.reached_at, r.owner_id) >= (:k, :r, :o COLLATE "C")'
            " AND NOT EXISTS (SELECT 1 FROM nxt WHERE (r.sort_key, r.reached_at, r.owner_id)"
            "  >= (nxt.lower_sort_key, nxt.lower_reached_at, nxt.lower_owner_id))"
            " ORDER BY r.sort_key, r.reached_at, r.owner_id"
        ),
        {
            "lb": block.leaderboard_id,
            "ps": block.period_start,
            "k": block.lower_sort_key,
            "r": block.lower_reached_at,
            "o": block.lower_owner_id,
        },
    ).all()
    sizes = [min(BLOCK_SIZE, len(rows) - i) for i in range(0, len(rows), BLOCK_SIZE)]
    conn.execute(
        text("UPDATE leaderboard_rank_blocks SET size = :n WHERE id = :id"),
        {"id": block_id, "n": sizes[0]},
    )
    _insert_blocks(
        conn,
        block.leaderboard_id,
        block.period_start,
        [(tuple(rows[i * BLOCK_SIZE]), n) for i, n in enumerate(sizes) if i > 0],
    )


def _insert_blocks(
    conn: Connection,
    leaderboard_id: str,
    period_start: datetime,
    blocks: list[tuple[tuple[Any, ...], int]],
) -> None:
    if not blocks:
        return
    conn.execute(
        text(
            "INSERT INTO leaderboard_rank_blocks (leaderboard_id, period_start, lower_sort_key,"
            " lower_reached_at, lower_owner_id, size)"
            " SELECT :lb, :ps, k, r, o, n FROM unnest(CAST(:k AS bigint[]),"
            " CAST(:r AS timestamptz[]), CAST(:o AS text[]), CAST(:n AS integer[]))"
            " AS t(k, r, o, n)"
        ),
        {
            "lb": leaderboard_id,
            "ps": period_start,
            "k": [lower[0] for lower, _ in blocks],
            "r": [lower[1] for lower, _ in blocks],
            "o": [lower[2] for lower, _ in blocks],
            "n": [n for _, n in blocks],
        },
    )


def rebuild_rank_blocks(conn: Connection, leaderboard_id: str, period_start: datetime) -> int:
    """Recompute the blocks of one period from its records (after a bulk load); returns count."""
    conn.execute(
        text("SELECT 1 FROM leaderboards WHERE id = :id FOR UPDATE"), {"id": leaderboard_id}
    )
    conn.execute(
        text(
            "DELETE FROM leaderboard_rank_blocks WHERE leaderboard_id = :lb AND period_start = :ps"
        ),
        {"lb": leaderboard_id, "ps": period_start},
    )
    rows = conn.execute(
        text(
            "SELECT i, sort_key, reached_at, owner_id, total FROM ("
            " SELECT sort_key, reached_at, owner_id, count(*) OVER () AS total,"
            "  row_number() OVER (ORDER BY sort_key, reached_at, owner_id) - 1 AS i"
            " FROM leaderboard_records WHERE leaderboard_id = :lb AND period_start = :ps) t"
            " WHERE i % :size = 0 ORDER BY i"
        ),
        {"lb": leaderboard_id, "ps": period_start, "size": BLOCK_SIZE},
    ).all()
    total = rows[0].total if rows else 0
    blocks: list[tuple[tuple[Any, ...], int]] = [
        (
            FIRST_BLOCK_LOWER if n == 0 else (r.sort_key, r.reached_at, r.owner_id),
            min(BLOCK_SIZE, total - r.i),
        )
        for n, r in enumerate(rows)
    ] or [(FIRST_BLOCK_LOWER, 0)]
    _insert_blocks(conn, leaderboard_id, period_start, blocks)
    return len(blocks)


# ---- standings -----------------------------------------------------------------------------


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
    return body


def current_board_period(board: LeaderboardDefinition, now: datetime | None = None) -> Period:
    """The period open at ``now``: a due scheduled reset shows at once, before any write."""
    return current_period(board.reset_schedule, board.period_start, now or datetime.now(UTC))


def resolve_period(
    conn: Connection,
    board: LeaderboardDefinition,
    period_start: datetime | None,
    now: datetime | None = None,
) -> Period:
    """The period asked for: the current one when ``period_start`` is None."""
    if period_start is None:
        return current_board_period(board, now)
    row = conn.execute(
        text(
            "SELECT period_start, period_end FROM leaderboard_periods"
            " WHERE leaderboard_id = :id AND period_start = :ps"
        ),
        {"id": board.id, "ps": period_start},
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
