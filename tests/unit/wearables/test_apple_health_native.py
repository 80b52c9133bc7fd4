"""The compiled Apple Health tokenizer (native/stride_native) against the Python parse:
the same rows, skip counts and errors, over fixtures and generated exports."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.platform.config import get_settings
from core.wearables.contracts import ParseError
from core.wearables.parsers import apple_health
from core.wearables.parsers.apple_health import iter_apple_health_rows, native_available

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wearables"
needs_native = pytest.mark.skipif(
    not native_available(), reason="stride_native is not built (scripts/setup.sh builds it)"
)


def test_the_compiled_tokenizer_is_built_where_it_is_required() -> None:
    if not (os.environ.get("CI") or os.environ.get("STRIDE_REQUIRE_NATIVE") == "1"):
        pytest.skip("only required in CI or with STRIDE_REQUIRE_NATIVE=1")
    assert native_available(), apple_health._NATIVE_MISSING
    assert apple_health.use_native(None) is True  # auto picks it


def outcome(path: Path, *, native: bool) -> tuple[list[tuple], dict[str, int], str | None]:
    """Every row (with its datetimes' offsets), the skip counts, the error text (if any)."""
    rows: list[tuple] = []
    skipped: dict[str, int] = {"earlier:upload": 1}  # the caller's own counts are kept
    error = None
    try:
        for chunk in iter_apple_health_rows(path, user_id="u1", skipped=skipped, native=native):
            assert chunk
            rows.extend((*r, r[4].utcoffset(), r[5].utcoffset(), str(r[0])) for r in chunk)
    except ParseError as exc:
        error = str(exc)
    return rows, skipped, error


@needs_native
@pytest.mark.parametrize(
    "name",
    ["apple_health_export.xml", "apple_health_export_ios16.xml", "apple_health_control_chars.xml"],
)
def test_good_exports_are_tokenized_natively_with_the_python_rows(name: str) -> None:
    apple_health.NATIVE_FALLBACKS.clear()
    native = outcome(FIXTURES / name, native=True)
    assert apple_health.NATIVE_FALLBACKS == {}, "the compiled tokenizer left it to Python"
    assert native == outcome(FIXTURES / name, native=False)
    assert native[0]


@needs_native
@pytest.mark.parametrize("name", ["apple_health_bad_date.xml", "apple_health_truncated.xml"])
def test_refused_exports_give_the_python_error(name: str) -> None:
    native = outcome(FIXTURES / name, native=True)
    assert native == outcome(FIXTURES / name, native=False)
    assert native[2] is not None


def test_on_fails_loudly_when_the_extension_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apple_health, "_stride_native", None)
    monkeypatch.setenv("STRIDE_WEARABLES_NATIVE", "on")
    get_settings.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="STRIDE_WEARABLES_NATIVE=on"):
            next(iter_apple_health_rows(FIXTURES / "apple_health_export.xml", user_id="u1"))
        monkeypatch.setenv("STRIDE_WEARABLES_NATIVE", "auto")
        get_settings.cache_clear()
        assert apple_health.use_native(None) is False
        rows = list(iter_apple_health_rows(FIXTURES / "apple_health_export.xml", user_id="u1"))
        assert rows  # auto: the Python parse
    finally:
        get_settings.cache_clear()


def test_off_uses_python_even_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIDE_WEARABLES_NATIVE", "off")
    get_settings.cache_clear()
    try:
        assert apple_health.use_native(None) is False
    finally:
        get_settings.cache_clear()


# ---- generated exports ---------------------------------------------------------------------

TYPES = [
    "HKQuantityTypeIdentifierStepCount",
    "HKQuantityTypeIdentifierHeartRate",
    "HKQuantityTypeIdentifierRestingHeartRate",
    "HKQuantityTypeIdentifierDistanceWalkingRunning",
    "HKQuantityTypeIdentifierActiveEnergyBurned",
    "HKCategoryTypeIdentifierSleepAnalysis",
    "HKQuantityTypeIdentifierBodyMass",
    "",
    "Ünknown &amp; odd",
]
GOOD_DATES = st.builds(
    lambda y, mo, d, h, mi, s, sign, oh, om: (
        f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d} {sign}{oh:02d}{om:02d}"
    ),
    st.integers(2000, 2026),
    st.integers(1, 12),
    st.integers(1, 28),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.sampled_from("+-"),
    st.sampled_from([0, 1, 5, 9, 14, 18]),
    st.sampled_from([0, 30, 45]),
)
ODD_DATES = st.sampled_from(
    [
        "2024-02-29 10:00:00 -0800",  # a leap day
        "2023-02-29 10:00:00 -0800",
        "2024-13-01 10:00:00 +0000",
        "2024-03-10 24:00:00 +0000",
        "2024-03-10 10:00:60 +0000",
        "2024-03-10 10:00:00 +1900",
        "2024-03-10 10:00:00 +0075",
        "2024-03-10 10:00:00 -1800",
        "2024-03-10T10:00:00Z",
        "2024-03-10 10:00:00 -0800 ",
        "\u0662024-03-10 10:00:00 -0800",
        "1999-12-31 23:59:59 +0000",
        "2999-01-01 00:00:00 +0000",
        "",
    ]
)
VALUES = st.one_of(
    st.sampled_from(
        [
            "62",
            "4.2",
            "0",
            "1e-05",
            "1.5E+3",
            "-1",
            "nan",
            "inf",
            "1e999",
            "1_000",
            " 5 ",
            "5.",
            ".5",
            "abc",
            "",
            "0x10",
            "HKCategoryValueSleepAnalysisAsleepCore",
            "HKCategoryValueSleepAnalysisInBed",
            "HKCategoryValueSleepAnalysisAsleep",
        ]
    ),
    st.floats(0, 1e6).map(repr),
)
UNITS = st.sampled_from(["count", "", "m" * 16, "m" * 17, "m" * 40, "µ" * 17])
TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\r"), max_size=12
)
DEVICES = st.one_of(
    st.sampled_from(
        [
            "&lt;&lt;HKDevice: 0x2830&gt;, name:Apple Watch, manufacturer:Apple Inc., "
            "model:Watch, hardware:Watch6,1, software:11.0&gt;",
            "&lt;&lt;HKDevice: 0x1&gt;, name:iPhone, model:iPhone&gt;",
            "&lt;&lt;HKDevice: 0x1&gt;, name:Ring, hardware:Gen3&gt;",
            "",
        ]
    ),
    TEXT.map(lambda t: escape(t)),
)


def escape(text: str) -> str:
    """``text`` as an attribute value, its markup characters by one of XML's forms."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace('"', "&quot;")
        .replace("\t", "&#9;")
        .replace("\n", "&#xA;")
    )


GOOD_VALUES = st.one_of(
    st.sampled_from(["62", "4.2", "0", "1e-05", "1.5E+3", "5.", ".5", " 5 ", "1_000", "+3"]),
    st.floats(0, 1e6).map(repr),
)
SLEEP_VALUES = st.sampled_from(
    [
        "HKCategoryValueSleepAnalysisAsleepCore",
        "HKCategoryValueSleepAnalysisAsleep",
        "HKCategoryValueSleepAnalysisInBed",
        "HKCategoryValueSleepAnalysisAwake",
    ]
)


def rarely(draw: st.DrawFn, one_in: int) -> bool:
    """True once in ``one_in`` draws (hypothesis favours an integer range's ends)."""
    return draw(st.sampled_from([False] * (one_in - 1) + [True]))


@st.composite
def good_interval(draw: st.DrawFn) -> tuple[str, str]:
    """A start and an end at or after it, both with the same UTC offset, as Apple writes."""
    start = draw(st.datetimes(datetime(2000, 1, 2), datetime(2025, 12, 31)))
    start = start.replace(microsecond=0)
    end = start + timedelta(seconds=draw(st.sampled_from([0, 0, 1, 59, 3600, 86400 * 3])))
    offset = draw(st.sampled_from(["-0800", "-0700", "+0000", "+0530", "+1345", "-1800"]))
    return (f"{start:%Y-%m-%d %H:%M:%S} {offset}", f"{end:%Y-%m-%d %H:%M:%S} {offset}")


@st.composite
def records(draw: st.DrawFn) -> str:
    """Mostly records the parse accepts (or skips); one in 40 has a field drawn from the odd
    and invalid ones (one refused record refuses the whole export)."""
    broken = rarely(draw, 40)
    attributes: dict[str, str] = {}
    kinds = [*TYPES[:6]] * 4 + TYPES[6:]
    kind = draw(st.sampled_from([*kinds, None] if broken else kinds))
    if kind is not None:
        attributes["type"] = kind
    attributes["sourceName"] = draw(
        st.one_of(
            st.sampled_from(["Anna\u2019s Watch", "Health", "Ænne \u00e9 \U0001f3c3"]),
            TEXT.map(escape),
        )
    )
    if draw(st.booleans()):
        attributes["device"] = draw(DEVICES)
    start, end = draw(good_interval())
    value = draw(SLEEP_VALUES if kind == TYPES[5] else GOOD_VALUES)
    attributes |= {
        "unit": draw(st.sampled_from(["count", "count/min", "kg", "µg", "Cal", "m" * 16]))
    }
    attributes |= {"startDate": start, "endDate": end, "value": value}
    if broken:
        field = draw(st.sampled_from(["startDate", "endDate", "value", "unit"]))
        if draw(st.integers(0, 4)) == 0:
            del attributes[field]
        else:
            odd = {"startDate": ODD_DATES, "endDate": ODD_DATES, "value": VALUES, "unit": UNITS}
            attributes[field] = draw(odd[field])
    if draw(st.integers(0, 4)) == 0:
        attributes[draw(st.sampled_from(["creationDate", "sourceVersion", "x_y.z-1"]))] = escape(
            draw(TEXT)
        )
    names = list(attributes)
    if draw(st.booleans()):
        names = draw(st.permutations(names))
    spacing = draw(st.sampled_from([" ", "\n   ", "\t"]))
    quote = draw(st.sampled_from(['"', '"', "'"]))
    escaped = "&apos;" if quote == "'" else "&quot;"
    body = spacing.join(f"{n}={quote}{attributes[n].replace(quote, escaped)}{quote}" for n in names)
    if draw(st.integers(0, 5)) == 0:
        child = '<MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="1"/>'
        return f" <Record {body}>\n  {child}\n </Record>\n"
    return f" <Record {body}/>\n"


PROLOGS = [
    '<?xml version="1.0" encoding="UTF-8"?>\n',
    "\ufeff<?xml version='1.0' encoding='utf-8' standalone='no'?>\n",
    "",
    '<?xml version="1.0"?>\n<!-- exported by Health -->\n',
    '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE HealthData [\n<!ELEMENT HealthData ANY>\n'
    "<!ATTLIST Record type CDATA #REQUIRED>\n]>\n",
    '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE HealthData [\n<!ATTLIST VisionPrescription\n'
    "  dateIssued CDATA #REQUIRED\n]>\n",  # iOS 16: an ATTLIST never closed
    '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE HealthData [\n<!ENTITY e "x">\n]>\n',
    '<?xml version="1.0" encoding="ISO-8859-1"?>\n',
    '<?xml version="1.1"?>\n',
    '<?xml-stylesheet href="x"?>\n',
    "  <?xml version='1.0'?>\n",
]
# Ways an export can go wrong (or merely be unusual) after a record.
DAMAGE = [
    "",
    "<!-- a comment -->\n",
    "<!-- a -- b -->\n",
    "<![CDATA[text]]>\n",
    "some text\n",
    "&undefined;\n",
    "<?pi data?>\n",
    " <Record type='a' type='b'/>\n",
    ' <Record type="a"unit="b"/>\n',
    ' <Record type="a<b"/>\n',
    ' <Record value="&bogus;"/>\n',
    ' <Record value="&#1;"/>\n',
    ' <Record xmlns="urn:x" type="HKQuantityTypeIdentifierStepCount"/>\n',
    " <a:Record/>\n",
    " <Record\r\n type='HKQuantityTypeIdentifierStepCount' value='a\r\nb'/>\n",
    "\x0b\x01",  # control characters: spaced by the sanitizer
    "</Wrong>\n",
    " <Unclosed>\n",
    "\udcff",  # stands for a byte that is not UTF-8
    "\ufffe",
]


@st.composite
def exports(draw: st.DrawFn) -> bytes:
    prolog = draw(st.sampled_from(PROLOGS[:6] * 4 + PROLOGS))  # mostly the good ones
    root = draw(
        st.sampled_from(['<HealthData locale="en_US">\n'] * 6 + ["<Other>\n", "<HealthData/>\n"])
    )
    parts = [prolog, root, ' <ExportDate value="2024-11-05 09:12:44 -0800"/>\n']
    for record in draw(st.lists(records(), max_size=30)):
        parts.append(record)
        if rarely(draw, 50):
            parts.append(draw(st.sampled_from(DAMAGE)))
    if root.endswith("/>\n"):
        parts = [prolog, root]
    elif not rarely(draw, 10):
        parts.append("</HealthData>\n" if "HealthData" in root else "</Other>\n")
    if rarely(draw, 10):
        parts.append(draw(st.sampled_from(["<!-- after -->\n", "junk", "<HealthData/>"])))
    text = "".join(parts)
    data = text.encode("utf-8", "surrogateescape")
    if rarely(draw, 10):
        data = data.replace(b"\n", b"\r\n")
    return data


@needs_native
@settings(
    max_examples=int(os.environ.get("STRIDE_NATIVE_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=exports(), read_bytes=st.sampled_from([5, 64, 333, 4096, apple_health.READ_BYTES]))
def test_generated_exports_give_the_python_parse_s_rows_and_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, read_bytes: int
) -> None:
    # Small reads put chunk boundaries everywhere: inside tags, UTF-8 sequences, the prolog.
    monkeypatch.setattr(apple_health, "READ_BYTES", read_bytes)
    path = tmp_path / "export.xml"
    path.write_bytes(data)
    assert outcome(path, native=True) == outcome(path, native=False)


@needs_native
def test_a_bad_record_after_many_chunks_keeps_the_rows_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the error is the Python parse's after rows were yielded, the compiled
    path yields the same rows first (each boundary position of the bad record)."""
    record = (
        ' <Record type="HKQuantityTypeIdentifierStepCount" sourceName="W" unit="count" '
        'startDate="2024-03-10 01:{m:02d}:00 -0800" endDate="2024-03-10 01:{m:02d}:30 -0800" '
        'value="{v}"/>\n'
    )
    monkeypatch.setattr(apple_health, "READ_BYTES", 997)
    for bad in range(20, 40):
        body = "".join(record.format(m=i, v="x" if i == bad else i) for i in range(50))
        path = tmp_path / f"export{bad}.xml"
        path.write_text(f'<?xml version="1.0"?>\n<HealthData>\n{body}</HealthData>\n')
        native = outcome(path, native=True)
        assert native == outcome(path, native=False)
        assert native[2] is not None and "Record #" in native[2]
        assert native[0], "rows of earlier chunks come before the error"


def test_the_image_builds_with_the_locked_maturin() -> None:
    """The Dockerfile's build requirements are requirements.lock's maturin pin and hashes."""
    root = Path(__file__).resolve().parents[3]

    def maturin(text: str) -> list[str]:
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("maturin=="))
        block = [lines[start]]
        for line in lines[start + 1 :]:
            if not line.startswith("    --hash="):
                break
            block.append(line)
        return block

    built = (root / "native" / "stride_native" / "build-requirements.txt").read_text()
    assert maturin(built) == maturin((root / "requirements.lock").read_text())
