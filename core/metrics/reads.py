"""What the API reads: a metric's series with its baseline and 3x line, the volatility
ranking, the alerts. The series' baseline is the rule of ``core.metrics.rules`` (the trailing
mean the alert agent applies, so the chart shows the line the alert uses), computed by
PostgreSQL in the same statement that reads the samples and, for the API, writes the JSON.

The ranking reads whole hours from the rollups, which the sampler keeps current, so its
window starts on an hour (:func:`ranking_start`). It orders metrics by the coefficient of
variation (standard deviation / |mean|) by default: standard deviation depends on scale,
so it would always put a metric counted in thousands above one counted in units, however
calm the first and jumpy the second; the CV compares volatility relative to each metric's
level. ``by=stddev`` ranks by the raw figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.metrics.catalog import CatalogEntry
from core.metrics.rules import RankBy

MAX_SERIES_HOURS = 24 * 7
MAX_RANKING_MINUTES = 24 * 60 * 7


class SeriesPoint(NamedTuple):
    """One point of a series."""

    minute: datetime  # a bucket's start when downsampled
    value: float  # a bucket's mean when downsampled
    min: float
    max: float
    count: int  # type: ignore[assignment]  # the field shadows tuple.count, on purpose
    baseline: float | None  # trailing mean of the rule's window (None: too few samples)
    threshold: float | None  # fire_factor x baseline


# One statement computes the points, their baselines and (for the API) their JSON, so that
# a read costs the API process one fetch of one text value, not ~1,500 rows and a Python
# pass over them (4.0 ms of CPU per read before; docs/metrics.md, "The series p99").
#
# The samples: one index-only range per partition (the covering index of migration 0021),
# the series and the baseline's window before it. The baseline is the rule's trailing mean
# (core.metrics.rules.trailing_means, which the tests hold it to): the samples of
# [minute - window, minute), i.e. a RANGE frame up to the current row, less the row itself.
# The sum is numeric because sum(numeric) and count have inverse transitions: the frame
# slides in O(1) per row, where avg(float8), or any frame with EXCLUDE, recomputes each
# frame (measured 2-5x slower than the old fetch plus Python pass).
_SERIES_CTE = """
    WITH framed AS (
        SELECT minute, value,
            sum(CAST(value AS numeric)) OVER w - CAST(value AS numeric) AS prior_total,
            count(*) OVER w - 1 AS prior_n
        FROM metric_samples
        WHERE metric_id = %(id)s AND minute >= %(from)s AND minute < %(end)s
        WINDOW w AS (ORDER BY minute RANGE BETWEEN %(window)s PRECEDING AND CURRENT ROW)
    ),
    judged AS (
        SELECT minute, value, CASE WHEN prior_n > 0 AND prior_n >= %(min_samples)s
            THEN CAST(prior_total / prior_n AS double precision) END AS baseline
        FROM framed WHERE minute >= %(start)s
    ),
    shown AS ({shown})
"""
_MINUTES = "SELECT minute, value, value AS min, value AS max, 1 AS count, baseline FROM judged"
# Buckets aligned on the window's start (rules.downsample); a bucket's baseline is the mean
# of its minutes' baselines (those judged: avg skips nulls).
_BUCKETS = (
    "SELECT date_bin(%(step)s, minute, %(start)s) AS minute, avg(value) AS value,"
    " min(value) AS min, max(value) AS max, count(*) AS count, avg(baseline) AS baseline"
    " FROM judged GROUP BY 1"
)
_SHOWN_COLUMNS = "minute, value, min, max, count, baseline, %(factor)s * baseline AS threshold"
# The JSON as pydantic wrote it for PointPublic (the same keys; times as ...Z).
_POINT_JSON = (
    "json_build_object('minute', to_char(minute AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'value', value, 'min', min, 'max', max,"
    " 'count', count, 'baseline', baseline, 'threshold', %(factor)s * baseline)"
)
# The four statements: minutes or buckets, rows or JSON (fixed fragments only, no input).
_SELECT_ROWS = f"SELECT {_SHOWN_COLUMNS} FROM shown ORDER BY minute"  # noqa: S608
_SELECT_JSON = (
    f"SELECT CAST(coalesce(json_agg({_POINT_JSON} ORDER BY minute), '[]') AS text)"  # noqa: S608
    " FROM shown"
)
_SERIES_SQL = {
    (as_json, downsampled): _SERIES_CTE.format(shown=_BUCKETS if downsampled else _MINUTES)
    + (_SELECT_JSON if as_json else _SELECT_ROWS)
    for as_json in (False, True)
    for downsampled in (False, True)
}


def series_query(
    metric: CatalogEntry,
    end: datetime,
    hours: int = 24,
    step_minutes: int = 1,
    as_json: bool = False,
) -> tuple[str, dict[str, Any]]:
    """The statement :func:`series` (or :func:`series_json`) runs, in psycopg's parameter
    style, and its parameters (``bench.metrics`` explains it)."""
    start = end - timedelta(hours=hours)
    window = timedelta(minutes=metric.window_minutes)
    return _SERIES_SQL[as_json, step_minutes > 1], {
        "id": metric.id,
        "from": start - window,
        "start": start,
        "end": end,
        "window": window,
        "min_samples": metric.min_samples,
        "factor": metric.fire_factor,
        "step": timedelta(minutes=step_minutes),
    }


def _driver(conn: Connection) -> Any:
    """psycopg's own connection under SQLAlchemy's: binary results, prepared statements,
    no SQLAlchemy row per point."""
    return conn.connection.driver_connection


def series(
    conn: Connection, metric: CatalogEntry, end: datetime, hours: int = 24, step_minutes: int = 1
) -> list[SeriesPoint]:
    """Samples of ``[end - hours, end)`` (gaps absent), each with the rule's baseline and
    line; ``step_minutes > 1`` averages buckets aligned on the window's start."""
    sql, params = series_query(metric, end, hours, step_minutes)
    with _driver(conn).cursor() as cursor:
        cursor.execute(sql, params, prepare=True, binary=True)
        return [SeriesPoint(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in cursor.fetchall()]


def series_json(
    conn: Connection, metric: CatalogEntry, end: datetime, hours: int = 24, step_minutes: int = 1
) -> str:
    """:func:`series`'s points as a JSON array, built by PostgreSQL (what the API sends)."""
    sql, params = series_query(metric, end, hours, step_minutes, as_json=True)
    with _driver(conn).cursor() as cursor:
        cursor.execute(sql, params, prepare=True)
        row = cursor.fetchone()
    return cast(str, row[0])


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
