"""Apple Health ``export.xml`` → samples, as a stream in constant memory.

The export is one ``<HealthData>`` element holding millions of ``<Record>`` elements::

    <Record type="HKQuantityTypeIdentifierStepCount" sourceName="Anna's Watch"
            device="&lt;&lt;HKDevice: 0x2830&gt;, name:Apple Watch, ..., hardware:Watch6,1, ...&gt;"
            unit="count" startDate="2024-03-10 01:59:00 -0800"
            endDate="2024-03-10 03:00:00 -0700" value="42"/>

libxml2 (lxml's feed parser with a parser *target*: no element tree is built) is fed the
file 256 KiB at a time and hands each start tag's attribute dict to a one-line callback;
the records of a chunk are then turned into rows in one loop, after the chunk's new dates
were parsed together (numpy over their bytes, ``fromisoformat`` mapped over them: a
refused date leaves the chunk to the per-record parse, which names it). libxml2 calling a Python
``start`` per tag costs about 90 % of a bare expat pass, expat calling the same handler
about 60 % (bench/apple_health_parse ``--alternatives``), so memory stays flat and the
tokenizer is no longer where the time goes.
Dates carry their own UTC offset, so DST transitions need no zone database: the same
wall time before and after "fall back" has different offsets and different instants.
Errors name the line of the offending ``Record``: libxml2's target interface has no
position, so a refused record's line is found by a second pass that stops at it (the
error path only).

The bytes the parser sees are sanitized first, in constant time and memory:

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
  unfinished token each time it is fed, so one 20 MB attribute cost 74 s under the GIL;
  libxml2 keeps the cap too (no record needs more, and it bounds what one tag may hold).

When built, the compiled tokenizer ``stride_native`` (native/stride_native, Rust) takes
the sanitized bytes instead of libxml2 and yields the same rows, about 5x faster
(docs/performance.md, section 2): it accepts a strict subset of what libxml2 accepts and
leaves everything else to the Python parse, which then runs from the start, so errors
keep their text and line (``STRIDE_WEARABLES_NATIVE`` chooses; see :func:`use_native`).

Rows (:data:`SampleRow`) and the samples built from them skip pydantic's passes (and even
``model_construct``'s per-field loop), so every bound of the ``WearableSample`` contract is
checked here: the user id once per
export, the unit per record (over ``UNIT_MAX_LENGTH`` characters is an error naming the
line), and the device name, which is cut to ``DEVICE_MAX_LENGTH`` characters ending with
"…" (the same cut every time, so re-uploads keep their sample ids).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from itertools import repeat
from pathlib import Path
from typing import BinaryIO, cast
from xml.parsers import expat

import numpy as np
from lxml import etree
from pydantic import BaseModel

from core.identity.ids import USER_ID_PATTERN
from core.platform.clock import DEFAULT_WINDOW
from core.platform.config import get_settings
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
log = logging.getLogger(__name__)
try:  # the compiled tokenizer (native/stride_native), built by scripts/setup.sh
    import stride_native as _stride_native
except ImportError as exc:  # pragma: no cover - depends on the build
    _stride_native = None
    _NATIVE_MISSING = f"{type(exc).__name__}: {exc}"
else:
    _NATIVE_MISSING = ""


class _RecordError(Exception):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message


# One validated sample, as the parser hands it on: what a ``WearableSample`` holds beyond
# the export's constants (user, source): (sample_id, metric, value, unit, start, end, device).
SampleRow = tuple[uuid.UUID, Metric, float, str, datetime, datetime, str]
READ_BYTES = 256 * 1024  # per feed: the rows of one chunk are handed on together


def iter_apple_health_rows(
    path: Path,
    *,
    user_id: str,
    skipped: dict[str, int] | None = None,
    native: bool | None = None,
) -> Iterator[list[SampleRow]]:
    """Yield the export's samples as lists of :data:`SampleRow`, one list per chunk read;
    raise :class:`ParseError` with the line.

    ``skipped`` (if given) counts records that are valid but not ingested, by reason.
    ``native``: use the compiled tokenizer (``True``; an error if it is not built), the
    Python one (``False``), or as ``STRIDE_WEARABLES_NATIVE`` says (``None``). Both yield
    the same rows and raise the same errors.
    """
    if not _USER_ID.fullmatch(user_id):
        raise ValueError(f"{user_id!r} is not a user id ({USER_ID_PATTERN})")
    counts = skipped if skipped is not None else {}
    if use_native(native):
        yield from _native_rows(path, user_id, counts)
    else:
        yield from _python_rows(path, user_id, counts)


def native_available() -> bool:
    """Whether the compiled tokenizer (``stride_native``) is importable."""
    return _stride_native is not None


_LOGGED: set[bool] = set()


def use_native(native: bool | None = None) -> bool:
    """Whether a parse uses the compiled tokenizer: ``native`` if given, else the setting
    ``wearables_native`` (auto: when built; on: required; off: never). Logs the choice once."""
    if native is None:
        mode = get_settings().wearables_native
        native = native_available() if mode == "auto" else mode == "on"
    if native and _stride_native is None:
        raise RuntimeError(
            "STRIDE_WEARABLES_NATIVE=on (or native=True) but the compiled Apple Health "
            f"tokenizer is not importable ({_NATIVE_MISSING}): run scripts/setup.sh"
        )
    if native not in _LOGGED:
        _LOGGED.add(native)
        if native:
            log.info("Apple Health parse: the compiled tokenizer (stride_native)")
        else:
            reason = f": {_NATIVE_MISSING}" if _NATIVE_MISSING else ""
            log.info("Apple Health parse: the Python tokenizer (libxml2)%s", reason)
    return native


# Parses the compiled tokenizer left to the Python one, by file name (the tests read it).
NATIVE_FALLBACKS: dict[str, int] = {}


class _Bail(Exception):
    """The compiled tokenizer met what it leaves to the Python parse."""


def _native_rows(path: Path, user_id: str, counts: dict[str, int]) -> Iterator[list[SampleRow]]:
    """The rows of the compiled tokenizer (stride_native), the Python parse's exactly.

    The tokenizer takes the same sanitized bytes as libxml2, accepts a strict subset of
    what libxml2 accepts and never reports an error: on anything outside it, or any
    record the Python row loop refuses, the Python parse runs from the start and its rows
    are yielded past those already yielded, so errors keep their text, line and the rows
    before them. A chunk's rows are held until the next chunk went through (the Python
    parse may count a record straddling two chunks in the earlier one). A record whose
    fields are not plainly valid comes back as its attribute dict, judged by ``_Rows``.
    """
    assert _stride_native is not None
    snapshot = dict(counts)
    metrics = [*QUANTITY_TYPES.values(), Metric.sleep]
    tokenizer = _stride_native.Tokenizer(
        [kind.encode() for kind in (*QUANTITY_TYPES, SLEEP_TYPE)],
        metrics,
        [
            SAMPLE_NAMESPACE.bytes
            + f"{user_id}|{WearableSource.apple_health.value}|{m.value}|".encode()
            for m in metrics
        ],
        [value.encode() for value in ASLEEP_VALUES],
        uuid.UUID,
        _SAFE_UNKNOWN,
        _timezone_of,
        _device,
        _EARLIEST_S,
        UNIT_MAX_LENGTH,
    )
    pending: dict[str, int] = {}  # skip counts of the chunk not yet handed on
    rows = _Rows(user_id, pending)  # judges the records left to Python
    held: list[SampleRow] = []
    held_counts: dict[str, int] = {}
    yielded = 0
    try:
        with path.open("rb") as raw:
            source = _Sanitized(raw)
            while True:
                chunk = source.read(READ_BYTES)
                latest_s = time.time() + _MAX_AHEAD_S
                out = tokenizer.feed(chunk, latest_s) if chunk else tokenizer.close(latest_s)
                if out is None:
                    raise _Bail
                items, odd = out
                if odd:
                    items = _judged(items, rows, latest_s)
                for reason, count in tokenizer.take_counts():
                    pending[reason] = pending.get(reason, 0) + count
                _merge(counts, held_counts)
                if held:
                    yield held
                    yielded += len(held)
                held, held_counts = items, pending
                pending = rows.counts = {}
                if not chunk:
                    break
    except (_Bail, _BadRecord, ParseError):
        NATIVE_FALLBACKS[path.name] = NATIVE_FALLBACKS.get(path.name, 0) + 1
        counts.clear()
        counts.update(snapshot)
        yield from _skipping(_python_rows(path, user_id, counts), yielded)
        return
    _merge(counts, held_counts)
    if held:
        yield held


def _judged(
    items: list[SampleRow | dict[str, str]], rows: _Rows, latest_s: float
) -> list[SampleRow]:
    judged: list[SampleRow] = []
    for item in items:
        if type(item) is dict:
            judged.extend(rows.of([item], latest_s))
        else:
            judged.append(cast(SampleRow, item))
    return judged


def _merge(counts: dict[str, int], more: dict[str, int]) -> None:
    for reason, count in more.items():
        counts[reason] = counts.get(reason, 0) + count


def _skipping(chunks: Iterator[list[SampleRow]], skip: int) -> Iterator[list[SampleRow]]:
    """``chunks`` without their first ``skip`` rows."""
    for chunk in chunks:
        if skip:
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            chunk, skip = chunk[skip:], 0
        yield chunk


def _timezone_of(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


def _python_rows(path: Path, user_id: str, counts: dict[str, int]) -> Iterator[list[SampleRow]]:
    """The rows by libxml2 and the Python row loop (no compiled code of ours)."""
    rows = _Rows(user_id, counts)
    target = _StartTags()
    parser = etree.XMLParser(
        target=target, resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False
    )
    fed = False
    with path.open("rb") as raw:
        source = _Sanitized(raw)
        while True:
            chunk = source.read(READ_BYTES)
            syntax: etree.XMLSyntaxError | None = None
            try:
                if chunk:
                    parser.feed(chunk)
                    fed = True
                elif fed:
                    parser.close()
            except etree.XMLSyntaxError as exc:
                syntax = exc  # the records before it are judged first, as they came first
            if target.records:
                try:
                    ready = rows.of(target.records, time.time() + _MAX_AHEAD_S)
                except _BadRecord as bad:
                    line = _line_of_record(path, bad.ordinal)
                    raise ParseError(
                        f"line {line}, Record #{bad.ordinal}, attribute {bad.field}", bad.message
                    ) from None
                target.records.clear()
                if ready:
                    yield ready
            if syntax is not None:
                line, column = syntax.position
                message = _POSITION_SUFFIX.sub("", syntax.msg or "")
                raise ParseError(f"line {line}, column {column}", f"malformed XML ({message})")
            if not chunk:
                break
    if not target.seen_root:
        raise ParseError("line 1", "empty file: expected an Apple Health export.xml")


def iter_apple_health(
    path: Path,
    *,
    user_id: str,
    skipped: dict[str, int] | None = None,
    native: bool | None = None,
) -> Iterator[WearableSample]:
    """Yield the samples of the export at ``path``; raise :class:`ParseError` with the line.

    ``skipped`` (if given) counts records that are valid but not ingested, by reason.
    The rows of :func:`iter_apple_health_rows` as ``WearableSample`` models.
    """
    new, set_dict, set_fields, set_extra, set_private = (
        _NEW_SAMPLE,
        _SET_DICT,
        _SET_FIELDS_SET,
        _SET_EXTRA,
        _SET_PRIVATE,
    )
    fields = _SAMPLE_FIELDS
    source = WearableSource.apple_health
    for rows in iter_apple_health_rows(path, user_id=user_id, skipped=skipped, native=native):
        for sample_id, metric, value, unit, start, end, device in rows:
            # Every field was validated by the parser against the contract's bounds (a
            # unit test checks each sample equals model_validate of its dump): skip
            # pydantic's passes and even model_construct's per-field loop.
            sample = new(WearableSample)
            set_dict(
                sample,
                {
                    "schema_version": 1,
                    "sample_id": sample_id,
                    "user_id": user_id,
                    "source": source,
                    "metric": metric,
                    "value": value,
                    "unit": unit,
                    "start": start,
                    "end": end,
                    "device": device,
                    "attributes": {},
                },
            )
            set_fields(sample, fields)
            set_extra(sample, None)
            set_private(sample, None)
            yield sample


def parse_apple_health(path: Path, *, user_id: str, native: bool | None = None) -> ParseResult:
    """All samples of a (small) export in a list; large ones go through the iterator."""
    result = ParseResult()
    samples = iter_apple_health(path, user_id=user_id, skipped=result.skipped, native=native)
    result.samples.extend(samples)
    return result


_POSITION_SUFFIX = re.compile(r", line \d+, column \d+$")


class _StartTags:
    """libxml2's parser target: keeps each ``<Record>``'s attributes, checks the root.

    As little Python as possible runs per tag; the records are judged per chunk."""

    def __init__(self) -> None:
        self.records: list[dict[str, str]] = []
        self.seen_root = False

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == "Record":
            # lxml hands a tag without attributes an immutable empty mapping, not a dict
            self.records.append(attrib or {})
        elif not self.seen_root:
            self.seen_root = True
            if tag != "HealthData":
                raise ParseError("line 1", f"root element is <{tag}>, not <HealthData>")

    def close(self) -> None:
        return None


class _BadRecord(Exception):
    def __init__(self, ordinal: int, field: str, message: str) -> None:
        self.ordinal = ordinal
        self.field = field
        self.message = message


class _Stop(Exception):
    pass


def _line_of_record(path: Path, ordinal: int) -> int:
    """The line of the ``ordinal``-th ``<Record>`` start tag (1-based), by a second pass
    over the same sanitized bytes that stops there (only when a record was refused)."""
    parser = expat.ParserCreate()
    seen = 0
    line = 0

    def start(name: str, _attrib: dict[str, str]) -> None:
        nonlocal seen, line
        if name == "Record":
            seen += 1
            if seen == ordinal:
                line = parser.CurrentLineNumber
                raise _Stop

    parser.StartElementHandler = start
    with path.open("rb") as raw:
        source = _Sanitized(raw)
        try:
            while chunk := source.read(READ_BYTES):
                parser.Parse(chunk, False)
        except _Stop:
            pass
    return line


class _Rows:
    """Turns the attribute dicts of a chunk's ``<Record>`` tags into :data:`SampleRow`s
    (or skip counts), validating every field against the ``WearableSample`` contract."""

    def __init__(self, user_id: str, counts: dict[str, int]) -> None:
        self.counts = counts
        self.digests = _digests_for(user_id)
        self.ordinal = 0  # records judged so far
        self.offsets: dict[str, timezone] = {}

    def of(self, records: list[dict[str, str]], latest_s: float) -> list[SampleRow]:
        """The rows of ``records``; :class:`_BadRecord` names the first refused one.
        ``latest_s``: the latest end accepted (POSIX seconds, now + max ahead)."""
        # One loop per chunk with everything bound to locals: a function call per field
        # was a third of the parse's CPU.
        first = self.ordinal + 1
        self.ordinal += len(records)
        _parse_instants(records)
        rows: list[SampleRow] = []
        append = rows.append
        counts = self.counts
        offsets = self.offsets
        quantity_types = QUANTITY_TYPES
        instants = _INSTANTS
        devices = _DEVICES
        digests = self.digests
        new_uuid, uuid_type, set_int, set_safe = _NEW_UUID, uuid.UUID, _SET_INT, _SET_SAFE
        from_bytes, safe_unknown = int.from_bytes, _SAFE_UNKNOWN
        index = 0
        try:
            for index, attrib in enumerate(records):  # noqa: B007 (named in the error)
                kind = attrib.get("type")
                metric = quantity_types.get(kind)  # type: ignore[arg-type]
                if metric is None and kind != SLEEP_TYPE:
                    if kind is None:
                        raise _RecordError("type", "missing")
                    reason = f"apple_health:{kind}"
                    counts[reason] = counts.get(reason, 0) + 1
                    continue
                raw_start = attrib.get("startDate")
                start_at = instants.get(raw_start)  # type: ignore[arg-type]
                if start_at is None:
                    start_at = _instant(raw_start, "startDate", offsets)
                raw_end = attrib.get("endDate")
                end_at = instants.get(raw_end)  # type: ignore[arg-type]
                if end_at is None:
                    end_at = _instant(raw_end, "endDate", offsets)
                start, start_key, start_s = start_at
                end, end_key, end_s = end_at
                # Instants are compared as POSIX seconds: floats, no timedelta per record.
                if end_s < start_s:
                    raise _RecordError("endDate", f"{raw_end!r} is before startDate")
                if start_s < _EARLIEST_S:  # an unset device clock
                    raise _RecordError("startDate", f"{raw_start!r} is before 2000")
                if end_s > latest_s:
                    raise _RecordError("endDate", f"{raw_end!r} is in the future")
                if metric is None:
                    category = attrib.get("value")
                    if category not in ASLEEP_VALUES:
                        reason = f"apple_health:sleep:{category}"
                        counts[reason] = counts.get(reason, 0) + 1
                        continue
                    metric, value, unit = Metric.sleep, float(end_s - start_s), "s"
                else:
                    unit = attrib.get("unit") or ""
                    if not unit or len(unit) > UNIT_MAX_LENGTH:
                        _check_unit(unit)
                    raw_value = attrib.get("value")
                    try:
                        value = float(raw_value)  # type: ignore[arg-type]
                    except (TypeError, ValueError):
                        value = _value(raw_value)
                    if not 0 <= value < _INF:  # NaN, infinities and negatives fail this
                        value = _value(raw_value)
                device_key = (attrib.get("sourceName", ""), attrib.get("device"))
                named = devices.get(device_key)
                if named is None:
                    named = _device(device_key)
                device, device_bytes = named
                # The key of core.wearables.contracts.sample_id_for after its constant prefix
                # (user|source|metric|), whose SHA-1 state is computed once per export; the
                # instants' and the device's parts are kept as UTF-8 bytes (with their "|").
                digest = digests[metric].copy()
                digest.update(start_key + end_key + device_bytes)
                # uuid.uuid5's result from the digest, without UUID.__init__'s checks.
                sample_id = new_uuid(uuid_type)
                set_int(sample_id, from_bytes(digest.digest()[:16]) & _UUID_MASK | _UUID_V5)
                set_safe(sample_id, safe_unknown)
                append((sample_id, metric, value, unit, start, end, device))
        except _RecordError as exc:
            raise _BadRecord(first + index, exc.field, exc.message) from None
        return rows


_INF = float("inf")
_SAMPLE_FIELDS = frozenset(WearableSample.model_fields)
_NEW_SAMPLE = WearableSample.__new__
# BaseModel's slots, set by their own descriptors (half the cost of object.__setattr__).
_SET_DICT = vars(BaseModel)["__dict__"].__set__
_SET_FIELDS_SET = vars(BaseModel)["__pydantic_fields_set__"].__set__
_SET_EXTRA = vars(BaseModel)["__pydantic_extra__"].__set__
_SET_PRIVATE = vars(BaseModel)["__pydantic_private__"].__set__
_NEW_UUID = uuid.UUID.__new__
_SAFE_UNKNOWN = uuid.SafeUUID.unknown
# The slots' own setters (UUID.__setattr__ refuses): cheaper than object.__setattr__ by name.
_SET_INT = vars(uuid.UUID)["int"].__set__
_SET_SAFE = vars(uuid.UUID)["is_safe"].__set__
# RFC 4122 version 5: clear the version nibble and variant bits, then set them.
_UUID_MASK = ~(0xF000 << 64) & ~(0xC000 << 48)
_UUID_V5 = (5 << 76) | (0x8000 << 48)


def _digests_for(user_id: str) -> dict[Metric, hashlib._Hash]:
    """SHA-1 of ``SAMPLE_NAMESPACE`` + ``user|apple_health|metric|``, per metric."""
    return {
        m: hashlib.sha1(
            SAMPLE_NAMESPACE.bytes
            + f"{user_id}|{WearableSource.apple_health.value}|{m.value}|".encode(),
            usedforsecurity=False,
        )
        for m in Metric
    }


# startDate often equals endDate: parse each once, with its sample-id form and POSIX seconds
_INSTANTS: dict[str, _Instant] = {}
_EARLIEST_S = DEFAULT_WINDOW.earliest.timestamp()
_MAX_AHEAD_S = DEFAULT_WINDOW.max_ahead.total_seconds()
_DEVICES: dict[tuple[str, str | None], tuple[str, bytes]] = {}  # -> (name, b"|" ...)


def _instant(raw: str | None, field: str, offsets: dict[str, timezone]) -> _Instant:
    """``raw`` as (datetime, its sample-id form, POSIX seconds), cached by ``raw``.

    libxml2 hands over strings; the datetime is parsed in C (``fromisoformat``, after the
    format is checked), and the POSIX seconds are the day's (cached per day and offset)
    plus the time of day: ``datetime.timestamp()`` per record cost more than the parse.
    """
    if raw is None:
        raise _RecordError(field, "missing")
    if not _DATE.match(raw):
        raise _RecordError(field, f"{raw!r} is not a date like '2024-03-10 01:59:00 -0800'")
    day_key = raw[:10] + raw[20:]
    day_s = _DAYS.get(day_key)
    if day_s is None:
        day_s = _day_seconds(raw, field, offsets)
    try:
        instant = _FROM_ISO(raw[:19] + raw[20:])
    except ValueError as exc:
        raise _RecordError(field, f"{raw!r}: {exc}") from None
    seconds = day_s + instant.hour * 3600 + instant.minute * 60 + instant.second
    if len(_INSTANTS) > _INSTANTS_MAX:
        _INSTANTS.clear()
    # Whole seconds: f"{s}.000" is sample_id_for's f"{timestamp:.3f}", formatted cheaper.
    value = _INSTANTS[raw] = (instant, f"{seconds}.000|".encode(), seconds)
    return value


# (datetime, its part of the sample id's text as bytes with the "|" after it, POSIX s)
_Instant = tuple[datetime, bytes, int]
_INSTANTS_MAX = 4096
_FROM_ISO = datetime.fromisoformat
_DAYS: dict[str, int] = {}  # "2024-03-10-0800" -> POSIX seconds of that local midnight
_DATE_LENGTH = 25  # "2024-03-10 01:59:00 -0800"
_GET = dict.get
_NEWLINE = ord("\n")
# Byte positions of _DATE's digits and separators, and each field's digits.
_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 21, 22, 23, 24]
_SEPARATORS = {4: "-", 7: "-", 10: " ", 13: ":", 16: ":", 19: " ", 25: "\n"}
_YEAR, _MONTH, _DAY = [0, 1, 2, 3], [5, 6], [8, 9]
_HOUR, _MINUTE, _SECOND, _OFFSET_H, _OFFSET_M = [11, 12], [14, 15], [17, 18], [21, 22], [23, 24]
_KEY = b"%d.000|"  # whole seconds: sample_id_for's f"{timestamp:.3f}", then its "|"


def _parse_instants(records: list[dict[str, str]]) -> None:
    """Put the chunk's new start and end dates into ``_INSTANTS``, all at once.

    The same results as :func:`_instant` per date, computed per chunk in C: the format
    checked and the POSIX seconds computed in numpy over all the dates' bytes,
    ``fromisoformat`` mapped over them. Any date this path would have to refuse (not the
    format, not a date, an offset over 18 h) leaves the whole chunk to :func:`_instant`,
    which names the record and says why.
    """
    raws: set[str | None] = set(map(_GET, records, repeat("startDate")))
    raws.update(map(_GET, records, repeat("endDate")))
    raws.discard(None)
    fresh = cast(list[str], list(raws.difference(_INSTANTS)))
    if not fresh:
        return
    encoded = ("\n".join(fresh) + "\n").encode()
    count = len(fresh)
    if len(encoded) != count * (_DATE_LENGTH + 1) or encoded.count(b"\n") != count:
        return  # some date is not 25 ASCII characters
    # Every row holds its date's 25 bytes and a line break (the count says no other).
    rows = np.frombuffer(encoded, dtype=np.uint8).reshape(count, _DATE_LENGTH + 1)
    digits = rows.astype(np.int64) - ord("0")
    if (rows[:, _DIGITS] - ord("0") > 9).any():  # unsigned: below "0" wraps past 9
        return
    for position, char in _SEPARATORS.items():
        if (rows[:, position] != ord(char)).any():
            return
    sign = rows[:, 20]
    if ((sign != ord("+")) & (sign != ord("-"))).any():
        return
    try:
        instants = list(map(_FROM_ISO, fresh))
    except ValueError:
        return

    def field(positions: list[int]) -> np.ndarray:
        value = digits[:, positions[0]]
        for position in positions[1:]:
            value = value * 10 + digits[:, position]
        return value

    offset_minutes = field(_OFFSET_H) * 60 + field(_OFFSET_M)
    if (offset_minutes > 18 * 60).any():
        return
    offset_minutes[sign == ord("-")] *= -1
    # Days since 1970-01-01 of the local date (H. Hinnant's days_from_civil).
    month = field(_MONTH)
    year = field(_YEAR) - (month <= 2)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + field(_DAY) - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    local = days * 86400 + field(_HOUR) * 3600 + field(_MINUTE) * 60 + field(_SECOND)
    seconds = (local - offset_minutes * 60).tolist()
    if len(_INSTANTS) + count > _INSTANTS_MAX:
        _INSTANTS.clear()
    keys = map(_KEY.__mod__, seconds)
    _INSTANTS.update(zip(fresh, zip(instants, keys, seconds, strict=True), strict=True))


def _day_seconds(raw: str, field: str, offsets: dict[str, timezone]) -> int:
    suffix = raw[20:]
    tz = offsets.get(suffix)
    if tz is None:
        sign = -1 if suffix[0] == "-" else 1
        minutes = sign * (int(suffix[1:3]) * 60 + int(suffix[3:5]))
        if abs(minutes) > 18 * 60:
            raise _RecordError(field, f"{raw!r} has an impossible UTC offset")
        tz = offsets[suffix] = timezone(timedelta(minutes=minutes))
    try:
        midnight = datetime(int(raw[0:4]), int(raw[5:7]), int(raw[8:10]), tzinfo=tz)
    except ValueError as exc:
        raise _RecordError(field, f"{raw!r}: {exc}") from None
    if len(_DAYS) > 4096:
        _DAYS.clear()
    seconds = _DAYS[raw[:10] + suffix] = int(midnight.timestamp())
    return seconds


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


def _device(key: tuple[str, str | None]) -> tuple[str, bytes]:
    """Source name plus hardware model; the HKDevice memory address changes every export.
    ``key``: the record's (sourceName, device); the result (with the name's UTF-8 bytes
    for the sample id) is cached under it."""
    if len(_DEVICES) > 1024:
        _DEVICES.clear()
    source, device = key
    hardware = (_HARDWARE.search(device) or _NAME.search(device)) if device else None
    name = f"{source} ({hardware.group(1).strip()})" if hardware else source
    if len(name) > DEVICE_MAX_LENGTH:
        name = name[: DEVICE_MAX_LENGTH - 1] + "\u2026"
    named = _DEVICES[key] = (name, name.encode())
    return named


def _check_unit(unit: str) -> None:
    if not unit:
        raise _RecordError("unit", "missing")
    if len(unit) > UNIT_MAX_LENGTH:
        message = f"{unit[:40]!r}... is {len(unit)} characters, at most {UNIT_MAX_LENGTH}"
        raise _RecordError("unit", message)


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
        (chunks are at most ``READ_BYTES``, below the cap, so no gap hides inside one)."""
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
