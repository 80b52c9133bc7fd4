"""``reads.series`` / ``reads.series_json`` against the rule's own figures
(``core.metrics.rules`` on the same samples, computed here): the fetched range (the window
before the series included, the minute ``end`` excluded), gaps, windows, minimum sample
counts, buckets aligned on the window's start, and the JSON the API sends (times as ...Z)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from pydantic_core import to_json
from sqlalchemy.engine import Engine

from core.metrics import reads
from core.metrics.catalog import metric_by_key
from core.metrics.rules import Point, downsample, trailing_means
from tests.integration.metrics.conftest import minute_start, new_metric, store_samples

pytestmark = pytest.mark.slow

HOURS = 3


def _points(seed: int) -> list[Point]:
    """3 h and the window before them, with runs of gaps (some longer than a window)."""
    rng = random.Random(seed)
    points = []
    minute = HOURS * 60 + 90
    while minute > 0:
        if rng.random() < 0.05:
            minute -= rng.choice((3, 20, 45))  # a gap
            continue
        points.append(Point(minute_start(minute), rng.uniform(0, 1000) * rng.choice((1, 1e-3))))
        minute -= 1
    return points


@pytest.mark.parametrize(("window", "min_samples", "seed"), [(60, 30, 1), (15, 1, 2), (5, 5, 3)])
def test_the_baseline_is_the_rules_trailing_mean(
    db_engine: Engine, window: int, min_samples: int, seed: int
) -> None:
    _, key = new_metric(db_engine, window_minutes=window, min_samples=min_samples, fire_factor=2.5)
    points = _points(seed)
    with db_engine.connect() as conn:
        entry = metric_by_key(conn, key)
    assert entry is not None
    store_samples(db_engine, entry.id, [(p.minute, p.value) for p in points])
    end = minute_start(0)
    start = end - timedelta(hours=HOURS)
    means = trailing_means(points, window, min_samples)
    expected = [(p, m) for p, m in zip(points, means, strict=True) if p.minute >= start]
    assert any(m is None for _, m in expected) and any(m is not None for _, m in expected)

    with db_engine.connect() as conn:
        got = reads.series(conn, entry, end, HOURS)
        raw = reads.series_json(conn, entry, end, HOURS)
        assert metric_by_key(conn, "no.such/metric") is None
    sent = json.loads(raw)
    # Byte for byte what to_json writes for one dict per point (as the route did before the
    # points were written from cached heads).
    assert raw == to_json(
        [
            {
                "minute": p.minute.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "value": p.value,
                "min": p.min,
                "max": p.max,
                "count": p.count,
                "baseline": p.baseline,
                "threshold": p.threshold,
            }
            for p in got
        ]
    )
    assert [(p.minute, p.value, p.min, p.max, p.count) for p in got] == [
        (p.minute, p.value, p.value, p.value, 1) for p, _ in expected
    ]
    for point, (_, mean) in zip(got, expected, strict=True):
        assert point.baseline == (None if mean is None else pytest.approx(mean, rel=1e-9))
        assert point.threshold == (None if mean is None else pytest.approx(2.5 * mean, rel=1e-9))
    # The JSON is the same points, as PointPublic writes them (times in UTC, ...Z).
    assert [
        (datetime.fromisoformat(p["minute"]), p["value"], p["min"], p["max"], p["count"])
        for p in sent
    ] == [(p.minute, p.value, p.min, p.max, p.count) for p in got]
    assert all(p["minute"].endswith("Z") for p in sent)
    assert [(p["baseline"], p["threshold"]) for p in sent] == [
        (pytest.approx(p.baseline, rel=1e-12), pytest.approx(p.threshold, rel=1e-12))
        if p.baseline is not None
        else (None, None)
        for p in got
    ]

    step = 25  # not a divisor of the hour: buckets align on the window's start
    buckets = downsample([p for p, _ in expected], step, start)
    with db_engine.connect() as conn:
        coarse = reads.series(conn, entry, end, HOURS, step)
        coarse_json = json.loads(reads.series_json(conn, entry, end, HOURS, step))
    assert [(p.minute, p.count, p.min, p.max) for p in coarse] == [
        (b.start, b.count, b.min, b.max) for b in buckets
    ]
    assert [p.value for p in coarse] == [pytest.approx(b.mean, rel=1e-12) for b in buckets]
    assert [p["count"] for p in coarse_json] == [b.count for b in buckets]
    for bucket, point in zip(buckets, coarse, strict=True):
        judged = [
            m
            for p, m in expected
            if m is not None and bucket.start <= p.minute < bucket.start + timedelta(minutes=step)
        ]
        assert point.baseline == (
            pytest.approx(sum(judged) / len(judged), rel=1e-9) if judged else None
        )


def test_a_metric_without_samples_has_an_empty_series(db_engine: Engine) -> None:
    _, key = new_metric(db_engine)
    with db_engine.connect() as conn:
        entry = metric_by_key(conn, key)
        assert entry is not None
        assert reads.series(conn, entry, minute_start(0)) == []
        assert reads.series_json(conn, entry, minute_start(0)) == b"[]"
        assert reads.series_json(conn, entry, minute_start(0), step_minutes=60) == b"[]"
