"""The series' JSON: times as pydantic writes the response model's datetimes (UTC, ``Z``),
whatever time zone the database session hands the minutes back in, and the points' bytes
(written per point from cached heads) the same as ``to_json`` of one dict per point."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone

from pydantic_core import to_json

from api.routes.metrics import PointPublic
from core.metrics.reads import _minute_text, points_json
from core.metrics.rules import Point, trailing_means, trailing_means_of


def test_minutes_are_written_in_utc_as_pydantic_writes_them() -> None:
    minute = datetime(2026, 12, 1, 20, 5, tzinfo=UTC)
    paris = minute.astimezone(timezone(timedelta(hours=1)))
    point = PointPublic(
        minute=minute, value=1.0, min=1.0, max=1.0, count=1, baseline=None, threshold=None
    )
    assert _minute_text(minute) == point.model_dump(mode="json")["minute"]
    assert _minute_text(paris) == "2026-12-01T20:05:00Z"


def _dicts_json(minutes: list[datetime], values: list[float], means: list[float | None]) -> bytes:
    """The points as the route wrote them before (one dict per point through ``to_json``)."""
    return to_json(
        [
            {
                "minute": _minute_text(minute),
                "value": value,
                "min": value,
                "max": value,
                "count": 1,
                "baseline": mean,
                "threshold": None if mean is None else 2.5 * mean,
            }
            for minute, value, mean in zip(minutes, values, means, strict=True)
        ]
    )


def test_points_json_is_byte_for_byte_the_dicts_json() -> None:
    rng = random.Random(7)
    end = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    minutes = [end - timedelta(minutes=m) for m in range(1500, 0, -1) if rng.random() > 0.05]
    edges = [0.0, -0.0, 1e16, 1e-7, -123456789.123456789, 5e-324, 1.7976931348623157e308, 8.0]
    values = edges + [rng.uniform(-1e6, 1e6) * rng.choice((1, 1e-9)) for _ in minutes[8:]]
    means = trailing_means([Point(m, v) for m, v in zip(minutes, values, strict=True)], 60, 30)
    assert None in means and any(m is not None for m in means)
    times = [m.timestamp() for m in minutes]
    sent = points_json(times, values, means, 2.5)
    assert sent == _dicts_json(minutes, values, means)
    assert PointPublic.model_validate(json.loads(sent)[0]).minute == minutes[0]
    assert points_json([], [], [], 2.5) == b"[]"


def test_trailing_means_of_epoch_seconds_are_the_same_floats() -> None:
    rng = random.Random(3)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    minutes = [start + timedelta(minutes=m) for m in range(600) if rng.random() > 0.1]
    values = [rng.uniform(0, 1000) * rng.choice((1, 1e-3)) for _ in minutes]
    for window, min_samples in ((60, 30), (15, 1), (5, 5)):
        by_datetime = trailing_means(
            [Point(m, v) for m, v in zip(minutes, values, strict=True)], window, min_samples
        )
        by_epoch = trailing_means_of(
            [m.timestamp() for m in minutes], values, 60.0 * window, min_samples
        )
        assert by_epoch == by_datetime  # exactly: the same sums in the same order
