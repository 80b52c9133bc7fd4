"""Apple Health ``export.xml`` → samples, as a stream in constant memory.

The export is one ``<HealthData>`` element holding millions of ``<Record>`` elements::

    <Record type="HKQuantityTypeIdentifierStepCount" sourceName="Anna's Watch"
            device="&lt;&lt;HKDevice: 0x2830&gt;, name:Apple Watch, ..., hardware:Watch6,1, ...&gt;"
            unit="count" startDate="2024-03-10 01:59:00 -0800"
            endDate="2024-03-10 03:00:00 -0700" value="42"/>

``iterparse`` yields each element once it is complete; the element and the root's
reference to it are cleared at once, so memory stays flat whatever the file size.
Dates carry their own UTC offset, so DST transitions need no zone database: the same
wall time before and after "fall back" has different offsets and different instants.
Errors name the line of the offending ``Record`` (found by a second, cheap pass that only
runs when something is wrong).
"""

from __future__ import annotations

import contextlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.parsers import expat

from core.wearables.contracts import (
    Metric,
    ParseError,
    ParseResult,
    WearableSample,
    WearableSource,
    sample_id_for,
)

QUANTITY_TYPES: dict[str, Metric] = {
    "HKQuantityTypeIdentifierStepCount": Metric.steps,
    "HKQuantityTypeIdentifierHeartRate": Metric.heart_rate,
    "HKQuantityTypeIdentifierRestingHeartRate": Metric.resting_heart_rate,
    "HKQuantityTypeIdentifierDistanceWalkingRunning": Metric.distance,
    "HKQuantityTypeIdentifierActiveEnergyBurned": Metric.active_energy,
}
SLEEP_TYPE = "HKCategoryTypeIdentifierSleepAnalysis"
# iOS 16+ splits sleep into stages; older exports say Asleep. InBed and Awake are not sleep.
ASLEEP_VALUES = frozenset(
    {
        "HKCategoryValueSleepAnalysisAsleep",
        "HKCategoryValueSleepAnalysisAsleepUnspecified",
        "HKCategoryValueSleepAnalysisAsleepCore",
        "HKCategoryValueSleepAnalysisAsleepDeep",
        "HKCategoryValueSleepAnalysisAsleepREM",
    }
)
_DATE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}$")
# HKDevice fields are "key:value" joined by ", "; values themselves may hold commas.
_HARDWARE = re.compile(r"hardware:(.+?)(?:, [a-z]+:|>$)")
_NAME = re.compile(r"name:(.+?)(?:, [a-z]+:|>$)")


class _RecordError(Exception):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message


def iter_apple_health(
    path: Path, *, user_id: str, skipped: dict[str, int] | None = None
) -> Iterator[WearableSample]:
    """Yield the samples of the export at ``path``; raise :class:`ParseError` with the line.

    ``skipped`` (if given) counts records that are valid but not ingested, by reason.
    """
    counts: dict[str, int] = skipped if skipped is not None else {}
    offsets: dict[str, timezone] = {}
    ordinal = 0
    root: ET.Element | None = None
    # expat >= 2.4 caps entity amplification and ElementTree never fetches external
    # entities, so an uploaded file cannot blow up memory or read local files.
    events = ET.iterparse(str(path), events=("start", "end"))  # noqa: S314
    try:
        for event, elem in events:
            if event == "start":
                if root is None:
                    root = elem
                    if elem.tag != "HealthData":
                        raise ParseError(
                            "line 1", f"root element is <{elem.tag}>, not <HealthData>"
                        )
                continue
            if elem.tag == "Record":
                ordinal += 1
                try:
                    sample = _sample(elem.attrib, user_id, offsets)
                except _RecordError as exc:
                    line = _line_of_record(path, ordinal)
                    raise ParseError(
                        f"line {line}, Record #{ordinal}, attribute {exc.field}", exc.message
                    ) from None
                if isinstance(sample, str):
                    counts[sample] = counts.get(sample, 0) + 1
                else:
                    yield sample
            if elem is not root and root is not None:
                elem.clear()
                root.clear()  # drop the root's references to finished children
    except ET.ParseError as exc:
        line, column = exc.position
        raise ParseError(f"line {line}, column {column}", f"malformed XML ({exc.msg})") from None
    if root is None:
        raise ParseError("line 1", "empty file: expected an Apple Health export.xml")


def parse_apple_health(path: Path, *, user_id: str) -> ParseResult:
    """All samples of a (small) export in a list; large ones go through the iterator."""
    result = ParseResult()
    result.samples.extend(iter_apple_health(path, user_id=user_id, skipped=result.skipped))
    return result


def _sample(
    attrib: dict[str, str], user_id: str, offsets: dict[str, timezone]
) -> WearableSample | str:
    kind = attrib.get("type")
    if kind is None:
        raise _RecordError("type", "missing")
    metric = QUANTITY_TYPES.get(kind)
    if metric is None and kind != SLEEP_TYPE:
        return f"apple_health:{kind}"
    start = _instant(attrib, "startDate", offsets)
    end = _instant(attrib, "endDate", offsets)
    if end < start:
        raise _RecordError("endDate", f"{attrib['endDate']!r} is before startDate")
    if metric is None:
        category = attrib.get("value")
        if category not in ASLEEP_VALUES:
            return f"apple_health:sleep:{category}"
        metric, value, unit = Metric.sleep, (end - start).total_seconds(), "s"
    else:
        unit = attrib.get("unit") or ""
        if not unit:
            raise _RecordError("unit", "missing")
        value = _value(attrib.get("value"))
    device = _device(attrib)
    # Validated field by field above; skip pydantic's second pass in this hot loop.
    return WearableSample.model_construct(
        sample_id=sample_id_for(user_id, WearableSource.apple_health, metric, start, end, device),
        user_id=user_id,
        source=WearableSource.apple_health,
        metric=metric,
        value=value,
        unit=unit,
        start=start,
        end=end,
        device=device,
        attributes={},
        schema_version=1,
    )


_INSTANTS: dict[str, datetime] = {}  # startDate often equals endDate: parse each once
_DEVICES: dict[tuple[str, str | None], str] = {}


def _instant(attrib: dict[str, str], field: str, offsets: dict[str, timezone]) -> datetime:
    raw = attrib.get(field)
    if raw is None:
        raise _RecordError(field, "missing")
    cached = _INSTANTS.get(raw)
    if cached is not None:
        return cached
    if len(_INSTANTS) > 4096:
        _INSTANTS.clear()
    value = _INSTANTS[raw] = _parse_instant(raw, field, offsets)
    return value


def _parse_instant(raw: str, field: str, offsets: dict[str, timezone]) -> datetime:
    if not _DATE.match(raw):
        raise _RecordError(field, f"{raw!r} is not a date like '2024-03-10 01:59:00 -0800'")
    suffix = raw[20:]
    tz = offsets.get(suffix)
    if tz is None:
        sign = -1 if suffix[0] == "-" else 1
        minutes = sign * (int(suffix[1:3]) * 60 + int(suffix[3:5]))
        if abs(minutes) > 18 * 60:
            raise _RecordError(field, f"{raw!r} has an impossible UTC offset")
        tz = offsets[suffix] = timezone(timedelta(minutes=minutes))
    try:
        return datetime(
            int(raw[0:4]),
            int(raw[5:7]),
            int(raw[8:10]),
            int(raw[11:13]),
            int(raw[14:16]),
            int(raw[17:19]),
            tzinfo=tz,
        )
    except ValueError as exc:
        raise _RecordError(field, f"{raw!r}: {exc}") from None


def _value(raw: str | None) -> float:
    if raw is None:
        raise _RecordError("value", "missing")
    try:
        value = float(raw)
    except ValueError:
        raise _RecordError("value", f"{raw!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise _RecordError("value", f"{raw!r} is not a finite non-negative number")
    return value


def _device(attrib: dict[str, str]) -> str:
    """Source name plus hardware model; the HKDevice memory address changes every export."""
    key = (attrib.get("sourceName", ""), attrib.get("device"))
    name = _DEVICES.get(key)
    if name is None:
        if len(_DEVICES) > 1024:
            _DEVICES.clear()
        source, device = key
        hardware = (_HARDWARE.search(device) or _NAME.search(device)) if device else None
        name = _DEVICES[key] = f"{source} ({hardware.group(1).strip()})" if hardware else source
    return name


def _line_of_record(path: Path, ordinal: int) -> int:
    """Line of the ``ordinal``-th ``<Record>`` start tag (1-based), by a pass with expat."""
    parser = expat.ParserCreate()
    seen = 0
    found: list[int] = []

    def start(name: str, _attrs: dict[str, str]) -> None:
        nonlocal seen
        if name == "Record":
            seen += 1
            if seen == ordinal:
                found.append(parser.CurrentLineNumber)
                raise StopIteration

    parser.StartElementHandler = start
    with path.open("rb") as fh, contextlib.suppress(StopIteration, expat.ExpatError):
        parser.ParseFile(fh)
    return found[0] if found else 0
