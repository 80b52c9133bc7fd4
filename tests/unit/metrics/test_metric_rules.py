"""The alert rule, downsampling and volatility against hand-computed cases."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from core.metrics.rules import (
    AlertRule,
    AlertState,
    EpisodeState,
    Point,
    Transition,
    WindowStats,
    downsample,
    evaluate,
    trailing_means,
    volatility,
)
from core.metrics.sampler import due_minutes

RULE = AlertRule(fire_factor=3.0, resolve_factor=2.0, window_minutes=60, min_samples=30)
HUNDRED = WindowStats.of([100.0] * 60)  # a last hour averaging exactly 100
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_exactly_three_times_does_not_fire_just_above_does() -> None:
    assert evaluate(RULE, EpisodeState(), 300.0, HUNDRED).transition is Transition.none
    verdict = evaluate(RULE, EpisodeState(), 300.0001, HUNDRED)
    assert verdict.transition is Transition.fired
    assert verdict.state.state is AlertState.firing
    assert (verdict.baseline, verdict.threshold) == (100.0, 300.0)


def test_the_mean_is_over_the_hour_without_the_point() -> None:
    # 30 points of 50 and 30 of 150: mean 100, so 301 fires and 299 does not.
    window = WindowStats.of([50.0] * 30 + [150.0] * 30)
    assert window.mean == 100.0
    assert evaluate(RULE, EpisodeState(), 301.0, window).transition is Transition.fired
    assert evaluate(RULE, EpisodeState(), 299.0, window).transition is Transition.none


def test_too_few_samples_in_the_window_does_not_judge() -> None:
    verdict = evaluate(RULE, EpisodeState(), 10_000.0, WindowStats.of([100.0] * 29))
    assert (verdict.transition, verdict.judged) == (Transition.none, False)
    assert evaluate(RULE, EpisodeState(), 10_000.0, WindowStats.of([100.0] * 30)).judged


def test_gaps_are_not_zeros() -> None:
    # Half the hour missing: the mean of the 30 present samples (100), not 50 over 60 minutes.
    points = [Point(T0 + timedelta(minutes=2 * i), 100.0) for i in range(30)]
    spike = Point(T0 + timedelta(minutes=60), 250.0)
    means = trailing_means([*points, spike], window_minutes=60, min_samples=30)
    assert means[-1] == 100.0
    assert evaluate(
        RULE, EpisodeState(), 250.0, WindowStats.of(p.value for p in points)
    ).transition is (
        Transition.none
    )  # 250 < 300: with zeros for the gaps (mean 50) it would have fired


def test_resolve_below_the_resolve_line_only() -> None:
    firing = EpisodeState(AlertState.firing, 1)
    assert evaluate(RULE, firing, 250.0, HUNDRED).transition is Transition.none  # still firing
    assert evaluate(RULE, firing, 200.0, HUNDRED).transition is Transition.resolved
    assert evaluate(RULE, firing, 200.0, HUNDRED).state == EpisodeState()


def test_pending_points_before_firing() -> None:
    rule = AlertRule(min_samples=1, pending_points=2)
    first = evaluate(rule, EpisodeState(), 400.0, HUNDRED)
    assert (first.transition, first.state.state) == (Transition.pending, AlertState.pending)
    assert evaluate(rule, first.state, 100.0, HUNDRED).transition is Transition.cancelled
    assert evaluate(rule, first.state, 400.0, HUNDRED).transition is Transition.fired


def test_a_series_oscillating_around_the_line_is_one_episode() -> None:
    """Baseline 100; points alternate 310 / 290 / 305 / 260 ...: one firing, no flapping,
    then one resolve when the series calms down below 200."""
    state = EpisodeState()
    transitions = []
    for value in [100, 310, 290, 305, 260, 301, 295, 299, 310, 250, 150, 100, 310]:
        verdict = evaluate(RULE, state, float(value), HUNDRED)
        transitions.append(verdict.transition)
        state = verdict.state
    assert transitions.count(Transition.fired) == 2  # the episode, and a new one at the end
    assert transitions.count(Transition.resolved) == 1
    assert transitions.index(Transition.resolved) == 10  # at 150, not at any of the 2xx


def test_rule_refuses_a_resolve_line_at_or_above_the_fire_line() -> None:
    with pytest.raises(ValueError, match="hysteresis"):
        AlertRule(fire_factor=3, resolve_factor=3)


def test_downsample_buckets_and_gaps() -> None:
    points = [Point(T0 + timedelta(minutes=m), float(m)) for m in (0, 1, 2, 3, 4, 10, 11)]
    buckets = downsample(points, 5, T0)
    assert [(b.start.minute, b.count, b.mean, b.min, b.max) for b in buckets] == [
        (0, 5, 2.0, 0.0, 4.0),
        (10, 2, 10.5, 10.0, 11.0),  # minutes 5-9 are a gap: no bucket, not a zero
    ]


def test_trailing_means_window_excludes_the_point_and_old_samples() -> None:
    points = [
        Point(T0 + timedelta(minutes=m), float(v)) for m, v in [(0, 1), (1, 2), (2, 3), (3, 10)]
    ]
    assert trailing_means(points, window_minutes=2, min_samples=1) == [None, 1.0, 1.5, 2.5]


def test_volatility_matches_the_textbook_figures() -> None:
    values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
    v = volatility(len(values), sum(values), sum(x * x for x in values))
    assert v.mean == 5.0
    assert v.stddev == pytest.approx(math.sqrt(32 / 7))  # sample (n - 1) standard deviation
    assert v.cv == pytest.approx(math.sqrt(32 / 7) / 5)
    assert volatility(1, 3.0, 9.0).stddev is None
    assert volatility(2, 0.0, 2.0).cv is None  # mean 0: no coefficient of variation


def test_due_minutes_first_start_catch_up_and_backfill_cap() -> None:
    now = datetime(2026, 12, 1, 12, 5, 30, tzinfo=UTC)
    assert due_minutes(None, now, 10, 60) == [datetime(2026, 12, 1, 12, 4, tzinfo=UTC)]
    # 12:05:05 with a 10 s lag: 12:04 is not ready yet, 12:03 is.
    early = datetime(2026, 12, 1, 12, 5, 5, tzinfo=UTC)
    assert due_minutes(None, early, 10, 60) == [datetime(2026, 12, 1, 12, 3, tzinfo=UTC)]
    last = datetime(2026, 12, 1, 12, 1, tzinfo=UTC)
    assert [m.minute for m in due_minutes(last, now, 10, 60)] == [2, 3, 4]
    assert [m.minute for m in due_minutes(last, now, 10, 1)] == [3, 4]  # older: gaps
    assert due_minutes(datetime(2026, 12, 1, 12, 4, tzinfo=UTC), now, 10, 60) == []


def test_ranking_reads_rolled_up_hours_and_the_rest_from_minutes() -> None:
    from core.metrics.reads import minute_stretches

    start = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    end = datetime(2026, 12, 1, 14, 10, tzinfo=UTC)
    hour = [datetime(2026, 12, 1, h, tzinfo=UTC) for h in range(24)]
    hours, stretches = minute_stretches(start, end, {hour[10], hour[11], hour[13], hour[14]})
    # The current hour (14:00, end is now) is read from its rollup, kept current.
    assert hours == [hour[10], hour[11], hour[13], hour[14]]
    assert stretches == [(start, hour[10]), (hour[12], hour[13])]
    assert minute_stretches(start, end, set()) == ([], [(start, end)])
