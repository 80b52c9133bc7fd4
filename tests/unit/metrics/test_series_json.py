"""The series' JSON times: what pydantic writes for the response model's datetimes (UTC, ``Z``),
whatever time zone the database session hands the minutes back in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from api.routes.metrics import PointPublic
from core.metrics.reads import _minute_text


def test_minutes_are_written_in_utc_as_pydantic_writes_them() -> None:
    minute = datetime(2026, 12, 1, 20, 5, tzinfo=UTC)
    paris = minute.astimezone(timezone(timedelta(hours=1)))
    point = PointPublic(
        minute=minute, value=1.0, min=1.0, max=1.0, count=1, baseline=None, threshold=None
    )
    assert _minute_text(minute) == point.model_dump(mode="json")["minute"]
    assert _minute_text(paris) == "2026-12-01T20:05:00Z"
