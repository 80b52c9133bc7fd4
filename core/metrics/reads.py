"""What the API reads: a metric's series with its baseline and 3x line, the volatility
ranking, the alerts. Figures are computed by the rules of ``core.metrics.rules`` (the same
ones the alert agent applies), so the chart shows the line the alert uses. The series'
baseline stays a Python pass over the rows: PostgreSQL's moving ``avg`` over a RANGE frame
recomputes each frame for a double (no inverse transition), measured 2-5x slower than the
fetch plus this pass, and as a sliding ``numeric`` sum or a running float sum still 1-4 ms
against ~0.6 ms here (docs/metrics.md, performance).

The ranking reads whole hours from the rollups, which the sampler keeps current, so its
window starts on an hour (:func:`ranking_start`). It orders metrics by the coefficient of
variation (standard deviation / |mean|) by default: standard deviation depends on scale,
so it would always put a metric counted in thousands above one counted in units, however
calm the first and jumpy the second; the CV compares volatility relative to each metric's
level. ``by=stddev`` ranks by the raw figure.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from pydantic_core import to_json
from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.metrics.catalog import CatalogEntry
from core.metrics.rules import Point, RankBy, downsample, trailing_means_of

MAX_SERIES_HOURS = 24 * 7
MAX_RANKING_MINUTES = 24 * 60 * 7


class SeriesPoint(NamedTuple):
    """One point of a series (a tuple: ~1,440 are built per read, 5x faster than a frozen
    dataclass)."""

    minute: datetime  # a bucket's start when downsampled
    value: float  # a bucket's mean when downsampled
    min: float
    max: float
    count: int  # type: ignore[assignment]  # the field shadows tuple.count, on purpose
    baseline: float | None  # trailing mean of the rule's window (None: too few samples)
    threshold: float | None  # fire_factor x baseline


# One index-only range per partition (the covering index of migration 0021): the metric's
# samples of the series and of the baseline's window before it (about 1,500 rows for 24 h).
# The minutes come as epoch seconds (float8, exact for whole seconds): psycopg loads 1,500
# of them in ~0.2 ms of CPU, against ~0.7 ms for timestamptz (a datetime and its time zone
# per row); the API's JSON needs only their text, cached per minute.
_SERIES_SQL = (
    "SELECT date_part('epoch', minute), value FROM metric_samples WHERE metric_id = %(id)s"
    " AND minute >= %(from)s AND minute < %(end)s ORDER BY minute"
)


def series_query(
    metric: CatalogEntry, end: datetime, hours: int = 24
) -> tuple[str, dict[str, Any]]:
    """The read :func:`series` runs, in psycopg's parameter style, and its parameters
    (``bench.metrics`` explains it)."""
    start = end - timedelta(hours=hours)
    return _SERIES_SQL, {
        "id": metric.id,
        "from": start - timedelta(minutes=metric.window_minutes),
        "end": end,
    }


class _Judged(NamedTuple):
    """The samples shown (``[end - hours, end)``) as columns, and the rule's baseline of each."""

    times: Sequence[float]  # epoch seconds of each sample's minute
    values: Sequence[float]
    means: list[float | None]


def _judged(conn: Connection, metric: CatalogEntry, end: datetime, hours: int) -> _Judged:
    """The rows straight from psycopg, binary, as plain tuples, by a prepared statement
    (SQLAlchemy's rows cost 2.7 ms per read and their attribute access 3.7 ms more in the
    baseline's pass, against 1.2 and 0.6 ms as psycopg's named tuples of datetimes; as
    tuples of epoch seconds the fetch is 0.18 ms against 0.68, CPU p50, load average 8.4:
    docs/metrics.md, "Series miss, round 4"), and the rule's baselines."""
    sql, params = series_query(metric, end, hours)
    driver = conn.connection.driver_connection
    with driver.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(sql, params, prepare=True, binary=True)
        rows = cursor.fetchall()
    if not rows:
        return _Judged((), (), [])
    times, values = zip(*rows, strict=True)
    means = trailing_means_of(times, values, 60.0 * metric.window_minutes, metric.min_samples)
    # The window before the series is read for the baselines, not shown.
    first = bisect_left(times, (end - timedelta(hours=hours)).timestamp())
    return _Judged(times[first:], values[first:], means[first:])


def _minute(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def series(
    conn: Connection, metric: CatalogEntry, end: datetime, hours: int = 24, step_minutes: int = 1
) -> list[SeriesPoint]:
    """Samples of ``[end - hours, end)`` (gaps absent), each with the rule's baseline and
    line; ``step_minutes > 1`` averages buckets aligned on the window's start."""
    start = end - timedelta(hours=hours)
    times, values, means = _judged(conn, metric, end, hours)
    line = metric.fire_factor
    if step_minutes <= 1:
        return [
            SeriesPoint(_minute(t), v, v, v, 1, m, None if m is None else line * m)
            for t, v, m in zip(times, values, means, strict=True)
        ]
    rows = [Point(_minute(t), v) for t, v in zip(times, values, strict=True)]
    buckets = downsample(rows, step_minutes, start)
    step = timedelta(minutes=step_minutes)
    baselines: dict[datetime, list[float]] = {}  # per bucket start, as downsample aligns them
    for p, m in zip(rows, means, strict=True):
        if m is not None:
            baselines.setdefault(start + ((p.minute - start) // step) * step, []).append(m)
    out = []
    for bucket in buckets:
        inside = baselines.get(bucket.start, [])
        baseline = sum(inside) / len(inside) if inside else None
        out.append(
            SeriesPoint(
                bucket.start,
                bucket.mean,
                bucket.min,
                bucket.max,
                bucket.count,
                baseline,
                None if baseline is None else line * baseline,
            )
        )
    return out


@lru_cache(maxsize=4096)
def _minute_text(minute: datetime) -> str:
    """A minute as the API writes times (what pydantic writes for a UTC datetime), cached:
    every metric's series shares the same ~1,440 minutes."""
    return minute.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=MAX_SERIES_HOURS * 60 + 120)  # a week of minutes: the longest series
def _point_head(epoch: float) -> bytes:
    """A point's JSON up to its value, ``{"minute":"...Z","value":``, per minute (epoch
    seconds), cached: every metric's series shares the same minutes."""
    return b'{"minute":"%s","value":' % _minute_text(_minute(epoch)).encode()


# The rest of a point at minute resolution: value, min and max are the one sample's value.
_POINT_TAIL = b'%s%s,"min":%s,"max":%s,"count":1,"baseline":%s,"threshold":%s}'


def _floats(values: Sequence[float | None]) -> list[bytes]:
    """Each float (or None) as pydantic's Rust core writes it in JSON, from one call (a
    float's text holds no comma, so splitting the array's text is exact)."""
    return to_json(values)[1:-1].split(b",")


def series_json(
    conn: Connection, metric: CatalogEntry, end: datetime, hours: int = 24, step_minutes: int = 1
) -> bytes:
    """:func:`series`'s points as the API sends them: a JSON array of PointPublic's keys.
    At minute resolution the floats are written by pydantic's Rust core, three arrays in
    one call each, and set into each point's bytes with its minute's cached head: the same
    bytes as ``to_json`` of one dict per point (the test compares them), in ~0.6 ms for
    1,440 points against ~1.7 ms (CPU, load average ~8). Earlier measures: validating into
    the response model and dumping it 4.4 ms; PostgreSQL writing the JSON (``json_agg`` or
    string concatenation, the baseline by a window function) 8-9 ms of its CPU per read
    (docs/metrics.md, "The series read, leaner")."""
    if step_minutes > 1:
        return to_json(
            [
                {
                    "minute": _minute_text(p.minute),
                    "value": p.value,
                    "min": p.min,
                    "max": p.max,
                    "count": p.count,
                    "baseline": p.baseline,
                    "threshold": p.threshold,
                }
                for p in series(conn, metric, end, hours, step_minutes)
            ]
        )
    return points_json(*_judged(conn, metric, end, hours), metric.fire_factor)


def points_json(
    times: Sequence[float], values: Sequence[float], means: Sequence[float | None], line: float
) -> bytes:
    """The JSON array of a minute-resolution series' points (PointPublic's keys) from its
    columns (``times`` in epoch seconds): byte for byte what ``to_json`` writes for one dict
    per point."""
    if not times:
        return b"[]"
    thresholds = [None if m is None else line * m for m in means]
    tail = _POINT_TAIL
    return b"[%s]" % b",".join(
        [
            tail % (_point_head(t), v, v, v, m, h)
            for t, v, m, h in zip(
                times, _floats(values), _floats(means), _floats(thresholds), strict=True
            )
        ]
    )


@dataclass(frozen=True)
class Ranked:
    rank: int
    key: str
    description: str
    unit: str
    count: int
    mean: float
    stddev: float
    cv: float | None


# Whole hours the job rolled up come from metric_rollups_hourly (10,000 rows an hour
# instead of 600,000); the rest of the window (its ragged ends, hours not rolled up yet)
# from the minutes, one range scan per stretch (BRIN on minute). Variance from count, sum
# and sum of squares: the same figure as stddev_samp up to rounding.
_RANKED = """
    WITH parts AS ({parts}),
    totals AS (
        SELECT metric_id, sum(n) AS n, sum(s) AS s, sum(sq) AS sq FROM parts GROUP BY metric_id
        HAVING sum(n) >= 2
    ),
    figures AS (
        SELECT metric_id, n, s / n AS mean,
            sqrt(greatest(0, (sq - s * s / n) / (n - 1))) AS sd
        FROM totals
    )
    SELECT m.key, m.description, m.unit, f.n, f.mean, f.sd,
        f.sd / NULLIF(abs(f.mean), 0) AS cv
    FROM figures f JOIN metrics m ON m.id = f.metric_id
    WHERE m.is_active
      AND (CAST(:game AS text) IS NULL OR m.game_id IS NULL OR m.game_id = :game)
    ORDER BY {order} DESC NULLS LAST, m.key
    LIMIT :limit
"""
_FROM_ROLLUPS = """
    SELECT metric_id, count::bigint AS n, total AS s, total_sq AS sq
    FROM metric_rollups_hourly WHERE hour = ANY(:hours)
"""
_FROM_MINUTES = """
    SELECT metric_id, count(*) AS n, sum(value) AS s, sum(value * value) AS sq
    FROM metric_samples WHERE minute >= :from_{i} AND minute < :to_{i} GROUP BY metric_id
"""


def ranking_start(end: datetime, window_minutes: int) -> datetime:
    """Where a ranking's window starts: ``window_minutes`` before ``end``, moved back to the
    hour it falls in when the window is an hour or more, so that every hour of it but the
    current one is read from the rollups (a window of 24 h covers 24 to 25 hours)."""
    start = end - timedelta(minutes=window_minutes)
    if window_minutes >= 60:
        start = start.replace(minute=0, second=0, microsecond=0)
    return start


def minute_stretches(
    start: datetime, end: datetime, rolled: set[datetime]
) -> tuple[list[datetime], list[tuple[datetime, datetime]]]:
    """The rolled-up hours of ``[start, end)`` read from the rollups, and the stretches of
    the window outside them (merged), read from the minutes. ``end`` is now: the hour it
    falls in counts as inside, since its rollup holds only the minutes sampled so far."""
    hours: list[datetime] = []
    stretches: list[tuple[datetime, datetime]] = []
    cursor = start
    hour = start.replace(minute=0, second=0, microsecond=0)
    if hour < start:
        hour += timedelta(hours=1)
    while hour < end:
        if hour in rolled:
            if cursor < hour:
                stretches.append((cursor, hour))
            hours.append(hour)
            cursor = min(end, hour + timedelta(hours=1))
        hour += timedelta(hours=1)
    if cursor < end:
        stretches.append((cursor, end))
    return hours, stretches


def ranking(
    conn: Connection,
    end: datetime,
    window_minutes: int = 24 * 60,
    by: RankBy = RankBy.cv,
    limit: int = 50,
    game_id: str | None = None,
) -> list[Ranked]:
    """Metrics with at least two samples in ``[ranking_start(end, window), end)``, most
    volatile first."""
    order = "cv" if by is RankBy.cv else "sd"  # one of two fixed names, never input
    start = ranking_start(end, window_minutes)
    rolled = set(
        conn.execute(
            text("SELECT hour FROM metric_rollup_hours WHERE hour >= :start AND hour < :end"),
            {"start": start, "end": end},
        ).scalars()
    )
    hours, stretches = minute_stretches(start, end, rolled)
    parts = [_FROM_ROLLUPS] if hours else []
    params: dict[str, Any] = {"hours": hours, "game": game_id, "limit": limit}
    for i, (low, high) in enumerate(stretches):
        parts.append(_FROM_MINUTES.format(i=i))
        params[f"from_{i}"], params[f"to_{i}"] = low, high
    # Only fixed fragments and numbered parameter names are formatted in, never input.
    sql = _RANKED.format(parts=" UNION ALL ".join(parts), order=order)
    rows = conn.execute(text(sql), params).all()
    return [
        Ranked(i + 1, r.key, r.description, r.unit, int(r.n), r.mean, r.sd, r.cv)
        for i, r in enumerate(rows)
    ]


@dataclass(frozen=True)
class AlertView:
    id: int
    metric_key: str
    state: str
    fired_minute: datetime
    fired_value: float
    baseline: float
    threshold: float
    resolved_minute: datetime | None
    resolved_value: float | None
    notified: str | None


def alerts(
    conn: Connection,
    *,
    active_only: bool,
    metric_key: str | None = None,
    game_id: str | None = None,
    limit: int = 100,
) -> list[AlertView]:
    """Alert episodes, newest first: the firing ones, or the history too."""
    params: dict[str, Any] = {"key": metric_key, "game": game_id, "limit": limit}
    rows = conn.execute(
        text(
            "SELECT a.id, m.key AS metric_key, a.state, a.fired_minute, a.fired_value, a.baseline,"
            " a.threshold, a.resolved_minute, a.resolved_value, a.notified"
            " FROM metric_alerts a JOIN metrics m ON m.id = a.metric_id"
            " WHERE (a.state = 'firing' OR NOT :active)"
            " AND (CAST(:key AS text) IS NULL OR m.key = :key)"
            " AND (CAST(:game AS text) IS NULL OR m.game_id IS NULL OR m.game_id = :game)"
            " ORDER BY a.fired_minute DESC, a.id DESC LIMIT :limit"
        ),
        {**params, "active": active_only},
    )
    return [AlertView(**r._mapping) for r in rows]
