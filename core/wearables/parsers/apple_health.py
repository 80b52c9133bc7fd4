"""Apple Health ``export.xml`` → samples, as a stream in constant memory.

The export is one ``<HealthData>`` element holding millions of ``<Record>`` elements::

    <Record type="HKQuantityTypeIdentifierStepCount" sourceName="Anna's Watch"
            device="&lt;&lt;HKDevice: 0x2830&gt;, name:Apple Watch, ..., hardware:Watch6,1, ...&gt;"
            unit="count" startDate="2024-03-10 01:59:00 -0800"
            endDate="2024-03-10 03:00:00 -0700" value="42"/>

expat is fed the file 64 KiB at a time and calls one Python handler per start tag; a
``<Record>``'s attributes become a sample right there, without an element tree (what
``ElementTree.iterparse`` built cost 3x the CPU of the whole parse, bench/apple_health_parse),
so memory stays flat whatever the file size.
Dates carry their own UTC offset, so DST transitions need no zone database: the same
wall time before and after "fall back" has different offsets and different instants.
Errors name the line of the offending ``Record`` (expat's current line).

The bytes expat sees are sanitized first, in constant time and memory:

- The DOCTYPE is blanked unparsed (each byte but line breaks becomes a space, so every
  line and column stays where it was). Apple's exports carry an internal DTD that nothing
  here needs, and iOS 16's (HealthKit Export Version 12) is malformed: its
  ``<!ATTLIST VisionPrescription`` is never closed. Without a DTD no entity can be defined,
  so nothing can expand; a DOCTYPE that declares one (``<!ENTITY``) is refused outright,
  since Apple's declare none, and so is a prolog longer than ``PROLOG_MAX_BYTES``.
- C0 control characters other than tab and line breaks, which XML 1.0 forbids but real
  exports contain (a vertical tab in a source name), become spaces instead of failing the
  whole file.
- A tag longer than ``TAG_MAX_BYTES`` is refused as it streams in: expat 2.5 re-scans an
  unfinished token each time it is fed, so one 20 MB attribute cost 74 s under the GIL.

Samples are built with ``model_construct`` (no second pydantic pass in the hot loop), so
every bound of the ``WearableSample`` contract is checked here: the user id once per
export, the unit per record (over ``UNIT_MAX_LENGTH`` characters is an error naming the
line), and the device name, which is cut to ``DEVICE_MAX_LENGTH`` characters ending with
"…" (the same cut every time, so re-uploads keep their sample ids).
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO
from xml.parsers import expat

from core.identity.ids import USER_ID_PATTERN
from core.platform.clock import DEFAULT_WINDOW
from core.wearables.contracts import (
    DEVICE_MAX_LENGTH,
    SAMPLE_NAMESPACE,
    UNIT_MAX_LENGTH,
    Metric,
    ParseError,
    ParseResult,
    WearableSample,
    WearableSource,
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
_USER_ID = re.compile(USER_ID_PATTERN)
# Apple's DTD is ~10 KB; the prolog (XML declaration, comments, DOCTYPE) is read whole.
PROLOG_MAX_BYTES = 256 * 1024
# expat 2.5 re-scans an unfinished token each time it is fed: one long tag is quadratic.
TAG_MAX_BYTES = 1024 * 1024  # Apple's records are a few hundred bytes
# XML 1.0 allows tab, LF and CR of the C0 controls; the others become spaces.
_CONTROLS = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0D))
_SPACE_CONTROLS = bytes.maketrans(_CONTROLS, b" " * len(_CONTROLS))
_BLANK = bytes.maketrans(bytes(range(256)), b" " * 10 + b"\n" + b" " * 2 + b"\r" + b" " * 242)
_SPACES = frozenset(b" \t\r\n")
_DOCTYPE_END = re.compile(rb"\]\s*>")
_ENCODING = re.compile(rb"<\?xml[^>]*?\sencoding\s*=\s*[\"']([^\"']*)")
NEWLINE = b"\n"


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
    if not _USER_ID.fullmatch(user_id):
        raise ValueError(f"{user_id!r} is not a user id ({USER_ID_PATTERN})")
    counts: dict[str, int] = skipped if skipped is not None else {}
    records = _Records(user_id, counts)
    parser = expat.ParserCreate()
    records.parser = parser
    parser.StartElementHandler = records.start
    with path.open("rb") as raw:
        source = _Sanitized(raw)
        try:
            while chunk := source.read(READ_BYTES):
                records.latest_s = time.time() + _MAX_AHEAD_S
                parser.Parse(chunk, False)
                if records.ready:
                    yield from records.ready
                    records.ready.clear()
            parser.Parse(b"", True)
        except expat.ExpatError as exc:
            raise ParseError(
                f"line {exc.lineno}, column {exc.offset}", f"malformed XML ({exc})"
            ) from None
    yield from records.ready
    if not records.seen_root:
        raise ParseError("line 1", "empty file: expected an Apple Health export.xml")


READ_BYTES = 64 * 1024  # per Parse call: the samples of one chunk are yielded together


class _Records:
    """expat's start-element handler: each ``<Record>`` becomes a sample (or a skip count)
    as soon as its start tag is parsed; no element tree is built."""

    def __init__(self, user_id: str, counts: dict[str, int]) -> None:
        self.user_id = user_id
        self.counts = counts
        self.ready: list[WearableSample] = []
        self.parser: expat.XMLParserType | None = None
        self.seen_root = False
        self.latest_s = 0.0  # the latest end accepted: now + max_ahead, set per chunk
        self.ordinal = 0
        self.offsets: dict[str, timezone] = {}
        # The sample id's key up to the instants, per metric (user and source are fixed).
        self.id_prefix = {
            m: f"{user_id}|{WearableSource.apple_health.value}|{m.value}|" for m in Metric
        }

    def start(self, name: str, attrib: dict[str, str]) -> None:
        if name != "Record":
            if not self.seen_root:
                self.seen_root = True
                if name != "HealthData":
                    raise ParseError("line 1", f"root element is <{name}>, not <HealthData>")
            return
        self.ordinal += 1
        try:
            sample = _sample(attrib, self)
        except _RecordError as exc:
            line = self.parser.CurrentLineNumber if self.parser is not None else 0
            raise ParseError(
                f"line {line}, Record #{self.ordinal}, attribute {exc.field}", exc.message
            ) from None
        if isinstance(sample, str):
            self.counts[sample] = self.counts.get(sample, 0) + 1
        else:
            self.ready.append(sample)


def parse_apple_health(path: Path, *, user_id: str) -> ParseResult:
    """All samples of a (small) export in a list; large ones go through the iterator."""
    result = ParseResult()
    result.samples.extend(iter_apple_health(path, user_id=user_id, skipped=result.skipped))
    return result


_SAMPLE_FIELDS = frozenset(WearableSample.model_fields)


def _sample(attrib: dict[str, str], records: _Records) -> WearableSample | str:
    kind = attrib.get("type")
    if kind is None:
        raise _RecordError("type", "missing")
    metric = QUANTITY_TYPES.get(kind)
    if metric is None and kind != SLEEP_TYPE:
        return f"apple_health:{kind}"
    # Instants are compared as POSIX seconds: floats, no timedelta per record.
    start, start_key, start_s = _instant(attrib, "startDate", records.offsets)
    end, end_key, end_s = _instant(attrib, "endDate", records.offsets)
    if end_s < start_s:
        raise _RecordError("endDate", f"{attrib['endDate']!r} is before startDate")
    if start_s < _EARLIEST_S:  # an unset device clock
        raise _RecordError("startDate", f"{attrib['startDate']!r} is before 2000")
    if end_s > records.latest_s:
        raise _RecordError("endDate", f"{attrib['endDate']!r} is in the future")
    if metric is None:
        category = attrib.get("value")
        if category not in ASLEEP_VALUES:
            return f"apple_health:sleep:{category}"
        metric, value, unit = Metric.sleep, (end - start).total_seconds(), "s"
    else:
        unit = attrib.get("unit") or ""
        if not unit:
            raise _RecordError("unit", "missing")
        if len(unit) > UNIT_MAX_LENGTH:
            message = f"{unit[:40]!r}... is {len(unit)} characters, at most {UNIT_MAX_LENGTH}"
            raise _RecordError("unit", message)
        value = _value(attrib.get("value"))
    device = _device(attrib)
    # The key of core.wearables.contracts.sample_id_for, its parts cached (same UUID).
    key = f"{records.id_prefix[metric]}{start_key}|{end_key}|{device}"
    # Validated field by field (every bound of the contract); skip pydantic's second pass
    # and even model_construct's per-field loop (a third of the parse's CPU).
    sample = _NEW_SAMPLE(WearableSample)
    _SET(
        sample,
        "__dict__",
        {
            "schema_version": 1,
            "sample_id": _uuid5(key),
            "user_id": records.user_id,
            "source": WearableSource.apple_health,
            "metric": metric,
            "value": value,
            "unit": unit,
            "start": start,
            "end": end,
            "device": device,
            "attributes": {},
        },
    )
    _SET(sample, "__pydantic_fields_set__", _SAMPLE_FIELDS)
    _SET(sample, "__pydantic_extra__", None)
    _SET(sample, "__pydantic_private__", None)
    return sample


_NEW_SAMPLE = WearableSample.__new__
_SET = object.__setattr__
_NAMESPACE_BYTES = SAMPLE_NAMESPACE.bytes


def _uuid5(key: str) -> uuid.UUID:
    """``uuid.uuid5(SAMPLE_NAMESPACE, key)`` without ``UUID.__init__``'s checks."""
    digest = hashlib.sha1(_NAMESPACE_BYTES + key.encode(), usedforsecurity=False).digest()
    value = int.from_bytes(digest[:16])
    value = (value & ~(0xF000 << 64) & ~(0xC000 << 48)) | (5 << 76) | (0x8000 << 48)
    result = _NEW_UUID(uuid.UUID)
    _SET(result, "int", value)
    _SET(result, "is_safe", uuid.SafeUUID.unknown)
    return result


_NEW_UUID = uuid.UUID.__new__
# startDate often equals endDate: parse each once, with its sample-id form and POSIX seconds
_INSTANTS: dict[str, tuple[datetime, str, float]] = {}
_EARLIEST_S = DEFAULT_WINDOW.earliest.timestamp()
_MAX_AHEAD_S = DEFAULT_WINDOW.max_ahead.total_seconds()
_DEVICES: dict[tuple[str, str | None], str] = {}


def _instant(
    attrib: dict[str, str], field: str, offsets: dict[str, timezone]
) -> tuple[datetime, str, float]:
    raw = attrib.get(field)
    if raw is None:
        raise _RecordError(field, "missing")
    cached = _INSTANTS.get(raw)
    if cached is not None:
        return cached
    if len(_INSTANTS) > 4096:
        _INSTANTS.clear()
    instant = _parse_instant(raw, field, offsets)
    seconds = instant.timestamp()
    value = _INSTANTS[raw] = (instant, f"{seconds:.3f}", seconds)
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
        name = f"{source} ({hardware.group(1).strip()})" if hardware else source
        if len(name) > DEVICE_MAX_LENGTH:
            name = name[: DEVICE_MAX_LENGTH - 1] + "\u2026"
        _DEVICES[key] = name
    return name


class _Sanitized:
    """The export's bytes as expat may see them: DOCTYPE blanked, control characters spaced.

    Reads the prolog once (at most ``PROLOG_MAX_BYTES``), then passes the file through
    chunk by chunk; the length of the stream and every line and column stay the same.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        head = raw.read(PROLOG_MAX_BYTES)
        self._head = _blank_doctype(head, complete=len(head) < PROLOG_MAX_BYTES)
        self._offset = 0  # of the next byte served
        self._since_tag_end = 0  # bytes since the last ">"

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if 0 <= size < len(self._head):
                chunk, self._head = self._head[:size], self._head[size:]
            else:
                chunk, self._head = self._head, b""
        else:
            chunk = self._raw.read(size)
        self._check_tag_length(chunk)
        self._offset += len(chunk)
        return chunk.translate(_SPACE_CONTROLS)

    def _check_tag_length(self, chunk: bytes) -> None:
        """:class:`ParseError` once more than ``TAG_MAX_BYTES`` go by without a ``>``
        (chunks are read 16 KiB at a time, so no gap hides inside one)."""
        first = chunk.find(b">")
        gap = self._since_tag_end + (len(chunk) if first == -1 else first)
        if gap > TAG_MAX_BYTES:
            raise ParseError(
                f"byte {self._offset - self._since_tag_end}",
                f"a tag is longer than {TAG_MAX_BYTES // 1024} KiB (Apple Health records are "
                "a few hundred bytes), so this file was not parsed",
            )
        self._since_tag_end = gap if first == -1 else len(chunk) - chunk.rfind(b">") - 1


def _blank_doctype(head: bytes, *, complete: bool) -> bytes:
    """``head`` with its DOCTYPE turned to spaces; :class:`ParseError` if it declares entities.

    Walks the prolog (XML declaration, processing instructions, comments, whitespace) up
    to the root element, as expat would. ``complete`` says the whole file is in ``head``.
    """
    if head[:2] in (b"\xfe\xff", b"\xff\xfe") or b"\x00" in head[:4]:
        raise ParseError("line 1", "export.xml is not UTF-8 encoded (Apple Health writes UTF-8)")
    pos = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    declared = _ENCODING.match(head, pos)
    if declared and declared.group(1).lower() != b"utf-8":
        encoding = declared.group(1).decode("ascii", "replace")
        raise ParseError("line 1", f"export.xml declares encoding {encoding!r}, not UTF-8")
    while True:
        while pos < len(head) and head[pos] in _SPACES:
            pos += 1
        if head.startswith(b"<?", pos):
            end = _past(head, b"?>", pos + 2)
        elif head.startswith(b"<!--", pos):
            end = _past(head, b"-->", pos + 4)
        elif head.startswith(b"<!DOCTYPE", pos):
            end = _doctype_end(head, pos)
            doctype = head[pos:end] if end != -1 else head[pos:]
            entity = doctype.find(b"<!ENTITY")
            if entity != -1:
                raise ParseError(
                    f"line {head.count(NEWLINE, 0, pos + entity) + 1}",
                    "the DOCTYPE declares an entity (<!ENTITY); Apple Health exports declare "
                    "none, so this file was not parsed",
                )
            if end != -1:
                head = head[:pos] + doctype.translate(_BLANK) + head[end:]
        else:
            return head  # the root element, or junk that expat reports with its position
        if end == -1:  # not closed within head
            break
        pos = end
    if complete:
        return head  # a truncated prolog: expat says where
    raise ParseError(
        f"line {head.count(NEWLINE, 0, pos) + 1}",
        f"the DOCTYPE (or XML prolog) is longer than {PROLOG_MAX_BYTES // 1024} KiB; Apple's "
        "is about 10 KiB, so this file was not parsed",
    )


def _past(head: bytes, marker: bytes, start: int) -> int:
    """Index just past the next ``marker`` from ``start``, or -1 if it is beyond ``head``."""
    found = head.find(marker, start)
    return found + len(marker) if found != -1 else -1


def _doctype_end(head: bytes, pos: int) -> int:
    """Index just past the DOCTYPE starting at ``pos``, or -1 if it ends beyond ``head``."""
    close = head.find(b">", pos)
    subset = head.find(b"[", pos)
    if subset == -1 or -1 < close < subset:  # no internal subset
        return _past(head, b">", pos)
    match = _DOCTYPE_END.search(head, subset)
    return match.end() if match else -1
