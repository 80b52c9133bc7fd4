"""Oura API v2 collection documents (``daily_sleep``, ``sleep``, ``heartrate``) → samples.

Each argument is one response body of ``/v2/usercollection/<name>`` as Oura returns it:
``{"data": [...], "next_token": null}``. Sleep and daily-sleep timestamps carry the user's
UTC offset; heart-rate timestamps are UTC.

- Sleep periods: ``type`` ``rest`` (a detection the user rejected) and ``deleted`` are not
  sleep and are skipped (counted). A period belongs to Oura's own ``day`` (a nap that ends
  after Oura's 6 pm day change counts for the next day), kept as ``attributes["day"]``.
- Heart rate: each reading is put in the user's zone, so its day is the user's: ``tz``
  when the caller knows it (an IANA zone, DST-aware), otherwise the UTC offset of the
  user's nearest sleep or daily-sleep timestamp in the same upload; without either it
  stays in UTC. Only the offset changes: the instant, hence the sample id, stays the same.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from core.wearables.contracts import (
    DAY_ATTRIBUTE,
    Metric,
    ParseError,
    ParseResult,
    WearableSample,
    WearableSource,
    check_vendor_day,
)
from core.wearables.parsers.common import number

COLLECTIONS = ("daily_sleep", "sleep", "heartrate")
NOT_SLEEP_TYPES = frozenset({"rest", "deleted"})  # Oura's PublicSleepType


class _Zones:
    """The user's UTC offset at an instant: a known zone, or the nearest local timestamp."""

    def __init__(self, tz: tzinfo | None) -> None:
        self.tz = tz
        self._instants: list[datetime] = []
        self._sorted = True

    def saw(self, local: datetime) -> None:
        self._instants.append(local)
        self._sorted = False

    def local(self, instant: datetime) -> datetime:
        if self.tz is not None:
            return instant.astimezone(self.tz)
        if not self._instants:
            return instant
        if not self._sorted:
            self._instants.sort()  # aware datetimes sort by instant
            self._sorted = True
        i = bisect.bisect_left(self._instants, instant)
        near = min(self._instants[max(i - 1, 0) : i + 1], key=lambda s: abs(s - instant))
        return instant.astimezone(near.tzinfo)


@dataclass
class _Upload:
    """What every item of one upload shares: who, which ring, the result, the user's zone."""

    user_id: str
    device: str
    result: ParseResult
    zones: _Zones


def parse_oura(
    collections: Mapping[str, Mapping[str, Any] | None],
    *,
    user_id: str,
    device: str = "",
    tz: tzinfo | None = None,
) -> ParseResult:
    """Samples of every collection given (keys: daily_sleep, sleep, heartrate)."""
    upload = _Upload(user_id, device, ParseResult(), _Zones(tz))
    for name in sorted(collections, key=lambda n: n == "heartrate"):  # heart rate last
        document = collections[name]
        if document is None:
            continue
        if name not in COLLECTIONS:
            raise ParseError(name, f"unknown Oura collection (expected one of {COLLECTIONS})")
        data = document.get("data") if isinstance(document, Mapping) else None
        if not isinstance(data, list):
            raise ParseError(f"{name}.data", "missing or not a list")
        for i, item in enumerate(data):
            where = f"{name}.data[{i}]"
            if not isinstance(item, Mapping):
                raise ParseError(where, "must be an object")
            _PARSERS[name](item, where, upload)
    return upload.result


def _daily_sleep(item: Mapping[str, Any], where: str, upload: _Upload) -> None:
    if item.get("score") is None:  # Oura omits the score of a day without enough data
        upload.result.skipped["oura:daily_sleep:no_score"] += 1
        return
    start = _instant(item.get("timestamp"), f"{where}.timestamp")
    upload.zones.saw(start)
    upload.result.samples.append(
        WearableSample.of(
            user_id=upload.user_id,
            source=WearableSource.oura,
            metric=Metric.sleep_score,
            value=number(item["score"], f"{where}.score"),
            unit="score",
            start=start,
            end=start + timedelta(days=1),
            device=upload.device,
        )
    )


def _sleep(item: Mapping[str, Any], where: str, upload: _Upload) -> None:
    start = _instant(item.get("bedtime_start"), f"{where}.bedtime_start")
    end = _instant(item.get("bedtime_end"), f"{where}.bedtime_end")
    if end < start:
        raise ParseError(f"{where}.bedtime_end", "is before bedtime_start")
    upload.zones.saw(start)
    upload.zones.saw(end)
    kind = item.get("type")
    if kind in NOT_SLEEP_TYPES:
        upload.result.skipped[f"oura:sleep:{kind}"] += 1
        return
    duration = item.get("total_sleep_duration")
    if duration is None:
        upload.result.skipped["oura:sleep:no_total_sleep_duration"] += 1
        return
    common: dict[str, Any] = {
        "user_id": upload.user_id,
        "source": WearableSource.oura,
        "device": upload.device,
    }
    day = item.get("day")
    if day is not None:
        if not isinstance(day, str):
            raise ParseError(f"{where}.day", f"must be a date like 2024-03-10, not {day!r}")
        try:
            check_vendor_day(day, start, end)
        except ValueError as exc:
            raise ParseError(f"{where}.day", str(exc)) from None
        common["attributes"] = {DAY_ATTRIBUTE: day}
    upload.result.samples.append(
        WearableSample.of(
            metric=Metric.sleep,
            value=number(duration, f"{where}.total_sleep_duration"),
            unit="s",
            start=start,
            end=end,
            **common,
        )
    )
    lowest = item.get("lowest_heart_rate")
    if kind == "long_sleep" and lowest is not None:
        # Oura's app shows the night's lowest heart rate as the resting heart rate.
        upload.result.samples.append(
            WearableSample.of(
                metric=Metric.resting_heart_rate,
                value=number(lowest, f"{where}.lowest_heart_rate"),
                unit="bpm",
                start=end,
                end=end,
                **common,
            )
        )


def _heartrate(item: Mapping[str, Any], where: str, upload: _Upload) -> None:
    at = upload.zones.local(_instant(item.get("timestamp"), f"{where}.timestamp"))
    upload.result.samples.append(
        WearableSample.of(
            user_id=upload.user_id,
            source=WearableSource.oura,
            metric=Metric.heart_rate,
            value=number(item.get("bpm"), f"{where}.bpm"),
            unit="bpm",
            start=at,
            end=at,
            device=upload.device,
            attributes={"context": str(item.get("source") or "")},
        )
    )


_PARSERS = {"daily_sleep": _daily_sleep, "sleep": _sleep, "heartrate": _heartrate}


def _instant(raw: object, where: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ParseError(
            where, f"must be an ISO 8601 timestamp like 2024-03-10T07:00:00+01:00, not {raw!r}"
        ) from None
    if value.tzinfo is None:
        raise ParseError(where, f"{raw!r} has no UTC offset")
    return value
