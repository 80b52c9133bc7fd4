"""Helpers shared by the JSON parsers: numbers, DST gaps, zone lookup with a clear error."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.wearables.contracts import ParseError


def is_nonexistent(local: datetime) -> bool:
    """True for a wall time skipped by a DST transition (it does not survive a UTC round trip)."""
    round_trip = local.astimezone(UTC).astimezone(local.tzinfo)
    return round_trip.replace(tzinfo=None) != local.replace(tzinfo=None)


def zone(name: str) -> tzinfo:
    """The IANA zone ``name``; ``ValueError`` naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        message = f"unknown time zone {name!r} (expected an IANA name like Europe/Paris)"
        raise ValueError(message) from None


def number(raw: object, where: str) -> float:
    """A finite non-negative JSON number (or numeric string, as Fitbit sends some)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ParseError(where, f"must be a number, not {raw!r}")
    try:
        value = float(raw)
    except ValueError:
        raise ParseError(where, f"must be a number, not {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise ParseError(where, f"must be a finite non-negative number, not {raw!r}")
    return value
