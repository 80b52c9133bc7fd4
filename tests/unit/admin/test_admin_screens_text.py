"""What the admin screens write for people: period labels, period parameters, schedules,
amounts and time windows (pure functions, no services)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from api.admin.home import day_start, format_amount
from api.admin.standings import (
    StandingsRequestError,
    parse_period,
    period_label,
    period_param,
    schedule_text,
)
from core.leaderboards.rules import EPOCH


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start", "end", "label"),
    [
        (EPOCH, None, "All time"),
        (EPOCH, at(2026, 12, 1, 14, 5, 9), "All time, until 1 Dec 2026 14:05:09 UTC"),
        (at(2026, 11, 30), at(2026, 12, 7), "30 Nov 2026 to 6 Dec 2026"),
        (at(2026, 12, 1), at(2026, 12, 2), "1 Dec 2026"),
        (at(2026, 12, 1, 14, 5), None, "From 1 Dec 2026 14:05 UTC"),
        (at(2026, 12, 1, 6), at(2026, 12, 1, 18), "1 Dec 2026 06:00 UTC to 1 Dec 2026 18:00 UTC"),
    ],
)
def test_period_labels_read_as_dates(start: datetime, end: datetime | None, label: str) -> None:
    assert period_label(start, end) == label


@pytest.mark.parametrize(
    "raw",
    [
        "2026-11-30",
        "2026-11-30T00:00:00Z",
        "2026-11-30T00:00:00+00:00",
        "2026-11-30T00:00:00 00:00",  # the "+" of a URL read as a space
        "2026-11-30T01:00:00+01:00",
        "2026-11-30T00:00:00",
    ],
)
def test_a_period_parameter_is_a_date_or_a_datetime(raw: str) -> None:
    assert parse_period(raw) == at(2026, 11, 30)


@pytest.mark.parametrize("raw", ["last week", "2026-13-01", "", "30/11/2026"])
def test_a_period_parameter_that_is_no_date_says_so(raw: str) -> None:
    with pytest.raises(StandingsRequestError, match="is not a date or time"):
        parse_period(raw)


def test_period_parameters_round_trip_without_escaping() -> None:
    start = datetime(2026, 11, 30, 1, tzinfo=timezone(timedelta(hours=1)))
    assert period_param(start) == "2026-11-30T00:00:00Z"
    assert parse_period(period_param(EPOCH)) == EPOCH


@pytest.mark.parametrize(
    ("cron", "text"),
    [
        (None, "never resets (all-time board)"),
        ("0 0 * * 1", "resets every Monday at 00:00 UTC"),
        ("0 0 * * 0", "resets every Sunday at 00:00 UTC"),
        ("30 6 * * *", "resets every day at 06:30 UTC"),
        ("0 0 1 * *", "resets on day 1 of every month at 00:00 UTC"),
        ("*/5 * * * *", "resets on the schedule '*/5 * * * *' (cron, UTC)"),
    ],
)
def test_schedules_in_words(cron: str | None, text: str) -> None:
    assert schedule_text(cron) == text


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("10.000000000000000000", "10 TRI"),
        ("0E-18", "0 TRI"),
        ("1250.500000000000000000", "1,250.5 TRI"),
        ("0.000000000000000001", "0.000000000000000001 TRI"),
        ("12345678901234567890", "12,345,678,901,234,567,890 TRI"),
    ],
)
def test_amounts_show_with_their_token(amount: str, shown: str) -> None:
    assert format_amount(Decimal(amount), "TRI") == shown


def test_today_is_the_utc_day() -> None:
    late_evening_in_new_york = datetime(2026, 12, 1, 22, tzinfo=timezone(timedelta(hours=-5)))
    assert day_start(late_evening_in_new_york) == at(2026, 12, 2)
