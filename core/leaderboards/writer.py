"""Applying scores to leaderboards: ``submit_scores``, the hot path of the scoring batch.

``core.events.store`` calls it inside the batch's transaction; each step is one statement
for the whole batch (docs/leaderboards.md, "Writing scores"). ``prune_submissions`` deletes
the idempotency rows that can no longer matter.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, text
from sqlalchemy.engine import Connection

from core.leaderboards.blocks import RankTuple, _move_counts
from core.leaderboards.definitions import (
    LeaderboardDefinition,
    _archive_until,
    _due_start,
    _lock_leaderboards,
    _open_periods,
    get_leaderboard,
)
from core.leaderboards.models import leaderboards_table, submissions_table
from core.leaderboards.rules import (
    Period,
    RecordState,
    ScoreSubmission,
    apply_submission,
    clamp_score,
    period_for,
    rank_key,
    sort_key,
)
from core.platform.db import json_rows

# A score dated further ahead of the writer's clock is recorded but not counted: a client
# clock that far off would otherwise fill a period nobody sees yet.
FUTURE_TOLERANCE = timedelta(days=1)

RecordKey = tuple[str, datetime, str]  # leaderboard_id, period_start, owner_id


def prune_submissions(conn: Connection, *, created_before: datetime | None = None) -> int:
    """Delete idempotency rows that can no longer matter; returns how many.

    Rows of archived periods (and of refused late scores) are always safe to delete: a
    replay of those events lands in an archived period and is refused again. With
    ``created_before``, rows written before that time go too, whatever their period: safe
    only if no event older than that can be replayed (e.g. the topic's retention).
    """
    subs, boards = submissions_table.c, leaderboards_table.c
    stale = or_(subs.period_start.is_(None), subs.period_start < boards.period_start)
    if created_before is not None:
        stale = or_(stale, subs.created_at < created_before)
    result = conn.execute(  # DELETE ... USING leaderboards
        delete(submissions_table).where(subs.leaderboard_id == boards.id, stale)
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


# _claim_events, _read_records and _write_records stay raw SQL for speed: each sends the
# whole batch as one JSON parameter that jsonb_to_recordset unpacks, where a Core multi-row
# insert on the models' tables would bind one parameter per value (per-column arrays
# already cost ~40 % of the batch time in Python: docs/leaderboards.md, "Writing scores").


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
        json_rows(
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
        json_rows({"lb": k[0], "ps": k[1], "owner": k[2]} for k in keys),
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
            **json_rows(
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


def _update_blocks(conn: Connection, changes: list[_Change]) -> None:
    """Move each changed record's count from its old block to its new one; split big blocks."""
    lookups: list[tuple[str, datetime, RankTuple]] = []
    signs: list[int] = []
    for change in changes:
        order = change.board.sort_order
        new = rank_key(order, change.after.score, change.after.reached_at, change.owner_id)
        if change.before is not None:
            old = rank_key(order, change.before.score, change.before.reached_at, change.owner_id)
            if old == new:
                continue
            lookups.append((change.board.id, change.period_start, old))
            signs.append(-1)
        lookups.append((change.board.id, change.period_start, new))
        signs.append(+1)
    _move_counts(conn, lookups, signs)
