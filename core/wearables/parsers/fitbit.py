"""Fitbit Web API intraday documents (heart rate, steps) → ``WearableSample`` records.

Each document is one response body of the Intraday endpoints, as Fitbit returns it::

    {"activities-heart": [{"dateTime": "2024-03-10", "value": {"restingHeartRate": 61, ...}}],
     "activities-heart-intraday": {"dataset": [{"time": "00:00:00", "value": 64}, ...],
                                   "datasetInterval": 1, "datasetType": "minute"}}

Times are wall-clock times of the user's time zone (their Fitbit profile): pass the IANA
zone (DST-aware) or the fixed ``offsetFromUTCMillis``. Wall times that do not exist (the
hour skipped when clocks spring forward) are skipped and counted.

The dataset's times are in order and carry no date; the date is the first summary's
``dateTime`` (``"today"``, as Fitbit's documented responses say, is the user's today). A
time earlier than the one before it is either the repeated hour of a day when clocks fall
back (the zone says that wall time happens twice: the second pass is the later instant)
or the next day (the "by interval" endpoints span up to 24 hours across midnight).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from core.wearables.contracts import (
    Metric,
    ParseError,
    ParseResult,
    WearableSample,
    WearableSource,
)
from core.wearables.parsers.common import is_nonexistent, number

# resource of the enclosing activities-* entry → (metric, unit)
INTRADAY_RESOURCES: dict[str, tuple[Metric, str]] = {
    "heart": (Metric.heart_rate, "bpm"),
    "steps": (Metric.steps, "count"),
}
DATASET_TYPES = {"second": timedelta(seconds=1), "minute": timedelta(minutes=1)}


def parse_fitbit(
    documents: Iterable[Mapping[str, Any]],
    *,
    user_id: str,
    tz: tzinfo,
    device: str = "",
    today: date | None = None,
) -> ParseResult:
    """All samples of the documents; raises :class:`ParseError` naming the field.

    ``today`` is the date ``"today"`` stands for (default: now in ``tz``).
    """
    result = ParseResult()
    today = today or datetime.now(tz).date()
    for index, document in enumerate(documents):
        where = f"documents[{index}]"
        if not isinstance(document, Mapping):
            raise ParseError(where, "must be a JSON object (one Fitbit API response)")
        resources = [
            key.removeprefix("activities-").removesuffix("-intraday")
            for key in document
            if key.startswith("activities-") and key.endswith("-intraday")
        ]
        if not resources:
            raise ParseError(
                where, "no activities-*-intraday dataset (expected heart or steps intraday)"
            )
        for resource in resources:
            if resource not in INTRADAY_RESOURCES:
                result.skipped[f"fitbit:{resource}"] += 1
                continue
            _parse_resource(document, resource, where, user_id, tz, device, today, result)
    return result


def _parse_resource(
    document: Mapping[str, Any],
    resource: str,
    where: str,
    user_id: str,
    tz: tzinfo,
    device: str,
    today: date,
    result: ParseResult,
) -> None:
    metric, unit = INTRADAY_RESOURCES[resource]
    summary_key = f"activities-{resource}"
    summaries = document.get(summary_key)
    if not isinstance(summaries, list) or not summaries:
        raise ParseError(
            f"{where}.{summary_key}", "missing: the day of the intraday dataset comes from it"
        )
    day = _date(summaries[0], f"{where}.{summary_key}[0].dateTime", today)

    if resource == "heart":
        for i, summary in enumerate(summaries):
            value = summary.get("value") if isinstance(summary, Mapping) else None
            resting = value.get("restingHeartRate") if isinstance(value, Mapping) else None
            if resting is None:
                result.skipped["fitbit:heart:no_resting_heart_rate"] += 1
                continue
            at = f"{where}.{summary_key}[{i}].value.restingHeartRate"
            summary_day = _date(summary, f"{where}.{summary_key}[{i}].dateTime", today)
            start = _absolute(datetime.combine(summary_day, time(), tz))
            result.samples.append(
                WearableSample.of(
                    user_id=user_id,
                    source=WearableSource.fitbit,
                    metric=Metric.resting_heart_rate,
                    value=number(resting, at),
                    unit="bpm",
                    start=start,
                    end=_absolute(datetime.combine(summary_day + timedelta(days=1), time(), tz)),
                    device=device,
                )
            )

    intraday_key = f"{summary_key}-intraday"
    intraday = document[intraday_key]
    at = f"{where}.{intraday_key}"
    if not isinstance(intraday, Mapping):
        raise ParseError(at, "must be an object with dataset, datasetInterval, datasetType")
    step = DATASET_TYPES.get(intraday.get("datasetType", "minute"))
    if step is None:
        raise ParseError(
            f"{at}.datasetType",
            f"must be one of {sorted(DATASET_TYPES)}, not {intraday.get('datasetType')!r}",
        )
    interval = intraday.get("datasetInterval", 1)
    if not isinstance(interval, int) or isinstance(interval, bool) or not 1 <= interval <= 60:
        raise ParseError(f"{at}.datasetInterval", f"must be an integer 1-60, not {interval!r}")
    width = step * interval
    dataset = intraday.get("dataset")
    if not isinstance(dataset, list):
        raise ParseError(f"{at}.dataset", "missing or not a list")
    first_day, fold = day, 0
    first: time | None = None
    previous: time | None = None
    for i, point in enumerate(dataset):
        point_at = f"{at}.dataset[{i}]"
        if not isinstance(point, Mapping):
            raise ParseError(point_at, "must be an object with time and value")
        wall = _time(point.get("time"), f"{point_at}.time")
        if first is None:
            first = wall
        elif previous is not None and wall < previous:
            if not fold and _repeated(datetime.combine(day, wall, tz)):
                fold = 1  # the second pass through the hour clocks fell back
            elif wall <= first and day == first_day:
                day, fold = day + timedelta(days=1), 0  # past midnight
            else:
                raise ParseError(
                    f"{point_at}.time",
                    f"goes back from {previous} to {wall}, which is neither an hour repeated "
                    "when clocks fall back (that needs the profile's IANA timezone, not a "
                    "fixed utc_offset_ms) nor the next day (a response spans 24 hours)",
                )
        previous = wall
        start = datetime.combine(day, wall, tz).replace(fold=fold)
        if is_nonexistent(start):
            result.skipped[f"fitbit:{resource}:nonexistent_local_time"] += 1
            continue
        start = _absolute(start)
        result.samples.append(
            WearableSample.of(
                user_id=user_id,
                source=WearableSource.fitbit,
                metric=metric,
                value=number(point.get("value"), f"{point_at}.value"),
                unit=unit,
                start=start,
                end=start + width,
                device=device,
            )
        )


def fixed_offset(offset_ms: int) -> tzinfo:
    """The zone of Fitbit's ``offsetFromUTCMillis`` (no DST knowledge)."""
    return timezone(timedelta(milliseconds=offset_ms))


def _repeated(local: datetime) -> bool:
    """True for a wall time that happens twice (clocks fall back): its offset has two values."""
    return local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset()


def _absolute(local: datetime) -> datetime:
    """``local`` with its zone replaced by its fixed offset, so arithmetic is in real time."""
    offset = local.utcoffset()
    assert offset is not None
    return local.replace(tzinfo=timezone(offset))


def _date(entry: object, where: str, today: date) -> date:
    raw = entry.get("dateTime") if isinstance(entry, Mapping) else None
    if raw == "today":
        return today
    try:
        return date.fromisoformat(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ParseError(where, f"must be a date like 2024-03-10 or today, not {raw!r}") from None


def _time(raw: object, where: str) -> time:
    try:
        parsed = time.fromisoformat(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ParseError(where, f"must be a time like 13:05:00, not {raw!r}") from None
    if parsed.tzinfo is not None:
        raise ParseError(where, "must be a wall-clock time without offset")
    return parsed
