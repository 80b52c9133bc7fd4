"""Pure rules of the metrics domain: the "3x the last hour" alert, downsampling, volatility.

Nothing here touches a database or a clock: the sampler, the alert agent and the API pass
values in and store what comes out, so every rule is tested with hand-computed cases.

The alert rule (per metric, every factor configurable):

* ``baseline`` = the mean of the samples in the trailing window ``[minute - window, minute)``
  (the point itself excluded). Missing minutes are gaps: the mean is over the samples
  present, never over zeros, and at least ``min_samples`` must be present, else the point
  is not judged (not enough history to say what normal is).
* a point **fires** when ``value > fire_factor * baseline`` (strictly: exactly 3x does not);
  ``pending_points`` consecutive such points move pending -> firing (1: the first one fires).
* a firing metric **resolves** when a point is ``<= resolve_factor * baseline`` with
  ``resolve_factor < fire_factor`` (hysteresis): a series hovering around the 3x line stays
  firing instead of flapping, so there is one alert per episode, not one per point.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any


class AlertState(enum.StrEnum):
    inactive = "inactive"
    pending = "pending"
    firing = "firing"


class Transition(enum.StrEnum):
    """What one evaluated point did to the metric's episode."""

    none = "none"
    pending = "pending"  # above the line, not yet for pending_points points
    fired = "fired"
    resolved = "resolved"
    cancelled = "cancelled"  # a pending episode fell back below the line before firing


@dataclass(frozen=True)
class AlertRule:
    fire_factor: float = 3.0
    resolve_factor: float = 2.0
    window_minutes: int = 60
    min_samples: int = 30
    pending_points: int = 1

    def __post_init__(self) -> None:
        if not self.fire_factor > 0:
            raise ValueError("fire_factor must be > 0")
        if not 0 <= self.resolve_factor < self.fire_factor:
            raise ValueError("resolve_factor must be >= 0 and below fire_factor (hysteresis)")
        if self.window_minutes < 1 or self.min_samples < 1 or self.pending_points < 1:
            raise ValueError("window_minutes, min_samples and pending_points must be >= 1")


@dataclass(frozen=True)
class WindowStats:
    """The trailing window of a point: how many samples it holds and their mean."""

    count: int
    mean: float | None

    @classmethod
    def of(cls, values: Iterable[float]) -> WindowStats:
        values = list(values)
        return cls(len(values), math.fsum(values) / len(values) if values else None)


@dataclass(frozen=True)
class EpisodeState:
    state: AlertState = AlertState.inactive
    points_above: int = 0


@dataclass(frozen=True)
class Verdict:
    """One point judged: the new state and what changed, with the figures that decided it."""

    state: EpisodeState
    transition: Transition
    baseline: float | None
    threshold: float | None  # fire_factor * baseline
    judged: bool  # False: too few samples in the window, the point changed nothing


def evaluate(rule: AlertRule, state: EpisodeState, value: float, window: WindowStats) -> Verdict:
    """The next state of a metric's episode after a new point ``value``."""
    if window.count < rule.min_samples or window.mean is None:
        return Verdict(state, Transition.none, window.mean, None, judged=False)
    baseline = window.mean
    threshold = rule.fire_factor * baseline
    above = value > threshold
    if state.state is AlertState.firing:
        if value <= rule.resolve_factor * baseline:
            return Verdict(EpisodeState(), Transition.resolved, baseline, threshold, True)
        return Verdict(state, Transition.none, baseline, threshold, True)
    if not above:
        transition = Transition.cancelled if state.state is AlertState.pending else Transition.none
        return Verdict(EpisodeState(), transition, baseline, threshold, True)
    points = state.points_above + 1
    if points >= rule.pending_points:
        return Verdict(
            EpisodeState(AlertState.firing, points), Transition.fired, baseline, threshold, True
        )
    return Verdict(
        replace(state, state=AlertState.pending, points_above=points),
        Transition.pending,
        baseline,
        threshold,
        True,
    )


# ---- series -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    minute: datetime
    value: float


@dataclass(frozen=True)
class Bucket:
    """A downsampled stretch of a series: ``step`` minutes starting at ``start``."""

    start: datetime
    count: int
    mean: float
    min: float
    max: float


def minute_of(at: datetime) -> datetime:
    """The minute a reading belongs to (seconds dropped): a late sample lands in its own."""
    return at.replace(second=0, microsecond=0)


def downsample(points: Sequence[Point], step_minutes: int, origin: datetime) -> list[Bucket]:
    """Buckets of ``step_minutes`` aligned on ``origin``; empty buckets are gaps (absent)."""
    if step_minutes < 1:
        raise ValueError("step_minutes must be >= 1")
    step = timedelta(minutes=step_minutes)
    groups: dict[datetime, list[float]] = {}
    for point in points:
        start = origin + ((point.minute - origin) // step) * step
        groups.setdefault(start, []).append(point.value)
    return [
        Bucket(start, len(values), math.fsum(values) / len(values), min(values), max(values))
        for start, values in sorted(groups.items())
    ]


def trailing_means(
    points: Sequence[Point], window_minutes: int, min_samples: int
) -> list[float | None]:
    """For each point (sorted by minute), the mean of the samples in the window before it,
    or None with fewer than ``min_samples`` there: the rule's baseline along a series."""
    return trailing_means_of(
        [p.minute for p in points],
        [p.value for p in points],
        timedelta(minutes=window_minutes),
        min_samples,
    )


def trailing_means_of(
    times: Sequence[Any], values: Sequence[float], window: Any, min_samples: int
) -> list[float | None]:
    """:func:`trailing_means` of parallel columns: ``times`` sorted (datetimes with a
    timedelta ``window``, or numbers, e.g. epoch seconds, with a number). The window of a
    point at ``t`` is ``[t - window, t)``. The same running sum in the same order whatever
    the times' type, so the same floats: the series' read passes epoch seconds, which
    psycopg loads ~4x faster than timestamps (docs/metrics.md, "Series miss, round 4")."""
    out: list[float | None] = []
    append = out.append
    start = 0
    total = 0.0
    for index, time in enumerate(times):
        edge = time - window
        while start < index and times[start] < edge:
            total -= values[start]
            start += 1
        count = index - start
        append(total / count if count >= min_samples and count else None)
        total += values[index]
    return out


# ---- volatility ranking -----------------------------------------------------------------


class RankBy(enum.StrEnum):
    cv = "cv"  # coefficient of variation: stddev / |mean|, comparable across scales
    stddev = "stddev"


@dataclass(frozen=True)
class Volatility:
    count: int
    mean: float
    stddev: float | None  # sample standard deviation (n - 1); None below two samples
    cv: float | None  # stddev / |mean|; None when the mean is 0


def volatility(count: int, total: float, total_sq: float) -> Volatility:
    """From count, sum and sum of squares (what hourly rollups keep): mean, sample standard
    deviation (PostgreSQL's ``stddev_samp``) and coefficient of variation."""
    if count < 1:
        raise ValueError("volatility of no samples")
    mean = total / count
    if count < 2:
        return Volatility(count, mean, None, None)
    variance = max(0.0, (total_sq - total * total / count) / (count - 1))
    stddev = math.sqrt(variance)
    cv = stddev / abs(mean) if mean != 0 else None
    return Volatility(count, mean, stddev, cv)
