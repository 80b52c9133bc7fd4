"""Leaderboard rules, pure: operators, sort orders, tie-breaks and reset periods.

Nothing here does I/O. The PostgreSQL modules (``definitions``, ``writer``, ``blocks`` and
``reads``) read records, call these functions and write the results, so every rule is
testable without a database.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import CroniterBadDateError, croniter

from core.leaderboards.errors import InvalidSchedule

# Scores are signed 64-bit; the negated score of a descending board must fit too.
SCORE_MAX = 2**63 - 1
SCORE_MIN = -SCORE_MAX

LEADERBOARD_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"

# The start of the one and only period of a leaderboard that never resets by schedule.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SortOrder(enum.StrEnum):
    """``desc``: a higher score is better; ``asc``: a lower score is better (race times)."""

    asc = "asc"
    desc = "desc"


class Operator(enum.StrEnum):
    """How a submitted score combines with the owner's current record (Nakama's operators)."""

    best = "best"  # keep the better of the two
    set = "set"  # replace
    incr = "incr"  # add
    decr = "decr"  # subtract, never below zero


@dataclass(frozen=True)
class ScoreSubmission:
    """One score for one owner in one game, keyed by the event it came from."""

    game_id: str
    owner_id: str
    score: int
    event_id: uuid.UUID
    occurred_at: datetime


@dataclass(frozen=True)
class RecordState:
    """What a leaderboard keeps per owner and period."""

    score: int
    reached_at: datetime  # when the current score was first reached (the tie-break)
    num_score: int  # submissions applied


@dataclass(frozen=True)
class Period:
    """A half-open interval [start, end); ``end`` is None for a period with no scheduled end."""

    start: datetime
    end: datetime | None

    def contains(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


def clamp_score(value: int) -> int:
    return max(SCORE_MIN, min(SCORE_MAX, value))


def is_better(sort_order: SortOrder, candidate: int, current: int) -> bool:
    """True when ``candidate`` ranks strictly above ``current``."""
    return candidate > current if sort_order is SortOrder.desc else candidate < current


def apply_submission(
    current: RecordState | None,
    score: int,
    at: datetime,
    operator: Operator,
    sort_order: SortOrder,
) -> RecordState:
    """The record after one submission of ``score`` made at ``at``.

    ``reached_at`` is the moment the resulting score was first reached: an equal score
    submitted later keeps the earlier time (earlier score ranks first on ties), and for
    ``best`` an equal score that arrives late but happened earlier moves it back, so
    ``best`` gives the same record whatever order the submissions arrive in.
    """
    score = clamp_score(score)
    if current is None:
        initial = {Operator.incr: score, Operator.decr: max(0, -score)}.get(operator, score)
        return RecordState(score=clamp_score(initial), reached_at=at, num_score=1)
    count = current.num_score + 1
    if operator is Operator.best:
        if is_better(sort_order, score, current.score):
            return RecordState(score=score, reached_at=at, num_score=count)
        reached = min(current.reached_at, at) if score == current.score else current.reached_at
        return RecordState(score=current.score, reached_at=reached, num_score=count)
    if operator is Operator.set:
        new = score
    elif operator is Operator.incr:
        new = clamp_score(current.score + score)
    else:
        new = max(0, clamp_score(current.score - score))
    reached = current.reached_at if new == current.score else at
    return RecordState(score=new, reached_at=reached, num_score=count)


def sort_key(sort_order: SortOrder, score: int) -> int:
    """The score as stored for ranking: ascending order of this key is best-first."""
    return -score if sort_order is SortOrder.desc else score


def rank_key(
    sort_order: SortOrder, score: int, reached_at: datetime, owner_id: str
) -> tuple[int, datetime, str]:
    """Total order of records, best first: score, then earlier ``reached_at``, then owner id."""
    return (sort_key(sort_order, score), reached_at, owner_id)


def validate_schedule(schedule: str) -> str:
    """The schedule, normalised; raises ``InvalidSchedule`` with a reason a user can act on."""
    normalised = " ".join(schedule.split())
    if len(normalised.split(" ")) != 5 or not croniter.is_valid(normalised):
        raise InvalidSchedule(
            f"reset_schedule {schedule!r} is not a 5-field cron expression "
            "(minute hour day-of-month month day-of-week, in UTC), e.g. '0 0 * * 1' for weekly"
        )
    try:  # e.g. '0 0 31 2 *': a valid expression for a day that never comes
        croniter(normalised, EPOCH, max_years_between_matches=8).get_next(datetime)
    except CroniterBadDateError:
        raise InvalidSchedule(
            f"reset_schedule {schedule!r} never fires (no such date within 8 years)"
        ) from None
    return normalised


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("leaderboard times must be timezone-aware")
    return at.astimezone(UTC)


def scheduled_period(schedule: str | None, at: datetime) -> Period:
    """The period of a cron ``schedule`` (evaluated in UTC) that contains ``at``."""
    at = _utc(at)
    if schedule is None:
        return Period(start=EPOCH, end=None)
    end = croniter(schedule, at).get_next(datetime)
    start = croniter(schedule, end).get_prev(datetime)
    return Period(start=start.astimezone(UTC), end=end.astimezone(UTC))


def period_for(schedule: str | None, current_start: datetime, at: datetime) -> Period | None:
    """The open period a score made at ``at`` belongs to, or None when its period is closed.

    ``current_start`` is the start of the leaderboard's current period: scheduled resets
    and on-demand resets (``stride leaderboards reset``) move it forward, and everything
    before it is archived. A forced reset can start a period between two cron times, so
    the current period begins at ``max(cron start, current_start)``.
    """
    at = _utc(at)
    if at < current_start:
        return None
    scheduled = scheduled_period(schedule, at)
    return Period(start=max(scheduled.start, current_start), end=scheduled.end)


def current_period(schedule: str | None, current_start: datetime, now: datetime) -> Period:
    """The period open at ``now`` (scheduled resets happen lazily: the time decides)."""
    period = period_for(schedule, current_start, now)
    if period is None:  # a clock behind the last reset: the latest period is still current
        return Period(start=current_start, end=scheduled_period(schedule, current_start).end)
    return period
