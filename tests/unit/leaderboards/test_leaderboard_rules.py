"""Leaderboard rules without a database: operators, tie-breaks, reset periods."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given
from hypothesis import strategies as st

from core.leaderboards.errors import InvalidSchedule
from core.leaderboards.rules import (
    EPOCH,
    SCORE_MAX,
    Operator,
    RecordState,
    ScoreSubmission,
    SortOrder,
    apply_submission,
    current_period,
    period_for,
    rank_key,
    scheduled_period,
    validate_schedule,
)

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

times = st.integers(min_value=0, max_value=10**6).map(lambda s: T0 + timedelta(seconds=s))
scores = st.integers(min_value=-(10**9), max_value=10**9)
submissions = st.lists(st.tuples(scores, times), min_size=1, max_size=30)
orders = st.sampled_from(list(SortOrder))


def fold(subs: list[tuple[int, datetime]], operator: Operator, order: SortOrder) -> RecordState:
    state = None
    for score, at in subs:
        state = apply_submission(state, score, at, operator, order)
    assert state is not None
    return state


@given(submissions, orders, st.randoms())
def test_best_keeps_the_best_score_first_reached_whatever_the_arrival_order(subs, order, rnd):
    best = max(s for s, _ in subs) if order is SortOrder.desc else min(s for s, _ in subs)
    first_reached = min(at for s, at in subs if s == best)
    shuffled = list(subs)
    rnd.shuffle(shuffled)
    for arrival in (subs, shuffled):
        state = fold(arrival, Operator.best, order)
        assert (state.score, state.reached_at, state.num_score) == (best, first_reached, len(subs))


@given(submissions, orders)
def test_set_keeps_the_last_score(subs, order):
    state = fold(subs, Operator.set, order)
    assert state.score == subs[-1][0]
    # reached_at: the first submission of the final run of equal values
    run_start = len(subs) - 1
    while run_start > 0 and subs[run_start - 1][0] == subs[-1][0]:
        run_start -= 1
    assert state.reached_at == subs[run_start][1]


@given(submissions, orders)
def test_incr_adds_every_score(subs, order):
    assert fold(subs, Operator.incr, order).score == sum(s for s, _ in subs)


@given(submissions, orders)
def test_decr_subtracts_and_never_goes_below_zero(subs, order):
    expected = 0
    for score, _ in subs:
        expected = max(0, expected - score)
    assert fold(subs, Operator.decr, order).score == expected


def test_incr_saturates_at_the_64_bit_limit():
    state = apply_submission(None, SCORE_MAX, T0, Operator.incr, SortOrder.desc)
    state = apply_submission(state, 5, T0, Operator.incr, SortOrder.desc)
    assert state.score == SCORE_MAX


def test_an_unchanged_score_keeps_the_time_it_was_first_reached():
    first = apply_submission(None, 10, T0, Operator.set, SortOrder.desc)
    again = apply_submission(first, 10, T0 + timedelta(hours=1), Operator.set, SortOrder.desc)
    assert again.reached_at == T0 and again.num_score == 2
    zero = apply_submission(first, 0, T0 + timedelta(hours=2), Operator.incr, SortOrder.desc)
    assert zero.reached_at == T0


@given(scores, scores, times, times, orders)
def test_rank_order_is_better_score_then_earlier_time(a, b, ta, tb, order):
    ka, kb = rank_key(order, a, ta, "alice"), rank_key(order, b, tb, "bob")
    if a != b:
        a_better = a > b if order is SortOrder.desc else a < b
        assert (ka < kb) == a_better
    elif ta != tb:
        assert (ka < kb) == (ta < tb)
    else:
        assert ka < kb  # full tie: owner id decides, deterministically


SCHEDULES = ["0 0 * * 1", "0 0 1 * *", "*/15 * * * *", "30 6 * * *", "0 0 * * *"]


@given(st.sampled_from(SCHEDULES), times)
def test_a_scheduled_period_contains_the_time_and_spans_consecutive_cron_times(schedule, at):
    period = scheduled_period(schedule, at)
    assert period.end is not None
    assert period.start <= at < period.end
    assert croniter(schedule, period.start).get_next(datetime) == period.end
    assert scheduled_period(schedule, period.start) == period  # the start belongs to it


@given(st.sampled_from(SCHEDULES), st.integers(min_value=0, max_value=400 * 24))
def test_periods_are_evaluated_in_utc_whatever_the_time_zone_of_the_input(schedule, hours):
    # Europe/Paris changes offset twice a year; the period must not.
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=hours, minutes=7)
    local = at.astimezone(ZoneInfo("Europe/Paris"))
    assert scheduled_period(schedule, local) == scheduled_period(schedule, at)
    assert scheduled_period(schedule, local).start.utcoffset() == timedelta(0)


def test_a_board_without_schedule_has_one_endless_period():
    assert scheduled_period(None, T0).start == EPOCH
    assert scheduled_period(None, T0).end is None


def test_a_forced_reset_starts_a_period_between_two_cron_times():
    weekly = "0 0 * * 1"
    forced = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)  # a Wednesday
    period = period_for(weekly, forced, datetime(2026, 11, 20, tzinfo=UTC))
    assert period is not None
    assert period.start == forced and period.end == datetime(2026, 11, 23, tzinfo=UTC)
    assert period_for(weekly, forced, datetime(2026, 11, 18, 9, tzinfo=UTC)) is None  # archived
    next_week = period_for(weekly, forced, datetime(2026, 11, 24, tzinfo=UTC))
    assert next_week is not None and next_week.start == datetime(2026, 11, 23, tzinfo=UTC)


def test_the_current_period_follows_the_clock_without_a_write():
    weekly = "0 0 * * 1"
    stored_start = datetime(2026, 11, 9, tzinfo=UTC)
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    assert current_period(weekly, stored_start, now).start == datetime(2026, 11, 16, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["every monday", "0 0 * * 1 2026", "61 * * * *", ""])
def test_invalid_schedules_are_refused_with_an_example(bad):
    with pytest.raises(InvalidSchedule, match="5-field cron"):
        validate_schedule(bad)


def test_schedules_are_normalised():
    assert validate_schedule("  0  0 * *   1 ") == "0 0 * * 1"


def test_submissions_are_frozen_values():
    sub = ScoreSubmission("tri", "p1", 10, uuid.uuid4(), T0)
    with pytest.raises(AttributeError):
        sub.score = 11  # type: ignore[misc]
