"""Oura API v2 collection documents (``daily_sleep``, ``sleep``, ``heartrate``) → samples.

Each argument is one response body of ``/v2/usercollection/<name>`` as Oura returns it:
``{"data": [...], "next_token": null}``. Timestamps carry their UTC offset.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from core.wearables.contracts import (
    Metric,
    ParseError,
    ParseResult,
    WearableSample,
    WearableSource,
)
from core.wearables.parsers.common import number

COLLECTIONS = ("daily_sleep", "sleep", "heartrate")


def parse_oura(
    collections: Mapping[str, Mapping[str, Any] | None], *, user_id: str, device: str = ""
) -> ParseResult:
    """Samples of every collection given (keys: daily_sleep, sleep, heartrate)."""
    result = ParseResult()
    for name, document in collections.items():
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
            _PARSERS[name](item, where, user_id, device, result)
    return result


def _daily_sleep(
    item: Mapping[str, Any], where: str, user_id: str, device: str, result: ParseResult
) -> None:
    if item.get("score") is None:  # Oura omits the score of a day without enough data
        result.skipped["oura:daily_sleep:no_score"] += 1
        return
    start = _instant(item.get("timestamp"), f"{where}.timestamp")
    result.samples.append(
        WearableSample.of(
            user_id=user_id,
            source=WearableSource.oura,
            metric=Metric.sleep_score,
            value=number(item["score"], f"{where}.score"),
            unit="score",
            start=start,
            end=start + timedelta(days=1),
            device=device,
        )
    )


def _sleep(
    item: Mapping[str, Any], where: str, user_id: str, device: str, result: ParseResult
) -> None:
    start = _instant(item.get("bedtime_start"), f"{where}.bedtime_start")
    end = _instant(item.get("bedtime_end"), f"{where}.bedtime_end")
    if end < start:
        raise ParseError(f"{where}.bedtime_end", "is before bedtime_start")
    duration = item.get("total_sleep_duration")
    if duration is None:
        result.skipped["oura:sleep:no_total_sleep_duration"] += 1
        return
    common: dict[str, Any] = {"user_id": user_id, "source": WearableSource.oura, "device": device}
    result.samples.append(
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
    if item.get("type") == "long_sleep" and lowest is not None:
        # Oura's app shows the night's lowest heart rate as the resting heart rate.
        result.samples.append(
            WearableSample.of(
                metric=Metric.resting_heart_rate,
                value=number(lowest, f"{where}.lowest_heart_rate"),
                unit="bpm",
                start=end,
                end=end,
                **common,
            )
        )


def _heartrate(
    item: Mapping[str, Any], where: str, user_id: str, device: str, result: ParseResult
) -> None:
    at = _instant(item.get("timestamp"), f"{where}.timestamp")
    result.samples.append(
        WearableSample.of(
            user_id=user_id,
            source=WearableSource.oura,
            metric=Metric.heart_rate,
            value=number(item.get("bpm"), f"{where}.bpm"),
            unit="bpm",
            start=at,
            end=at,
            device=device,
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
