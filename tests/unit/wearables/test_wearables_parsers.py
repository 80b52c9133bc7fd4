"""Vendor parsers against fixture files in each vendor's documented shape."""

from __future__ import annotations

import json
import struct
import wave
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path

import pytest

from core.platform.config import get_settings
from core.wearables.contracts import (
    Metric,
    ParseError,
    WearableSample,
    WearableSource,
    sample_id_for,
)
from core.wearables.parsers.apple_health import (
    READ_BYTES,
    iter_apple_health,
    iter_apple_health_rows,
    native_available,
    parse_apple_health,
)
from core.wearables.parsers.audio import audio_metadata
from core.wearables.parsers.common import zone
from core.wearables.parsers.fitbit import fixed_offset, parse_fitbit
from core.wearables.parsers.oura import parse_oura

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wearables"


# Every Apple Health test runs over both tokenizers: the Python one (libxml2) and the
# compiled one (native/stride_native), chosen as in production by STRIDE_WEARABLES_NATIVE.
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "apple_health" in metafunc.function.__name__:
        metafunc.parametrize("tokenizer", ["python", "native"], indirect=True)


@pytest.fixture(autouse=True)
def tokenizer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    mode = getattr(request, "param", "default")
    if mode == "native" and not native_available():
        pytest.skip("stride_native is not built (scripts/setup.sh builds it)")
    if mode != "default":
        monkeypatch.setenv("STRIDE_WEARABLES_NATIVE", "on" if mode == "native" else "off")
    get_settings.cache_clear()
    yield mode
    get_settings.cache_clear()


LA = zone("America/Los_Angeles")


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def by_metric(samples: list[WearableSample], metric: Metric) -> list[WearableSample]:
    return [s for s in samples if s.metric is metric]


# ---- Fitbit -----------------------------------------------------------------------------


def test_fitbit_heart_intraday_skips_the_dst_gap_and_keeps_resting_rate() -> None:
    result = parse_fitbit([load("fitbit_heart_intraday_dst.json")], user_id="u1", tz=LA)
    beats = by_metric(result.samples, Metric.heart_rate)
    # 02:00 and 02:30 do not exist in Los Angeles on 2024-03-10 (clocks jump to 03:00).
    assert [s.start.strftime("%H:%M") for s in beats] == ["00:00", "01:59", "03:00", "23:59"]
    assert result.skipped["fitbit:heart:nonexistent_local_time"] == 2
    assert beats[1].start.astimezone(UTC) == datetime(2024, 3, 10, 9, 59, tzinfo=UTC)
    assert beats[2].start.astimezone(UTC) == datetime(2024, 3, 10, 10, 0, tzinfo=UTC)
    assert all(s.end - s.start == timedelta(minutes=1) and s.unit == "bpm" for s in beats)
    (resting,) = by_metric(result.samples, Metric.resting_heart_rate)
    assert resting.value == 61
    # The day is 23 hours long: midnight PST to midnight PDT.
    assert resting.end - resting.start == timedelta(hours=23)
    assert resting.day.isoformat() == "2024-03-10"


def test_fitbit_steps_use_the_dataset_interval_and_a_fixed_offset() -> None:
    tz = fixed_offset(7_200_000)  # offsetFromUTCMillis of a user in UTC+2
    result = parse_fitbit([load("fitbit_steps_intraday_15min.json")], user_id="u1", tz=tz)
    assert [(s.start.isoformat(), s.value) for s in result.samples] == [
        ("2024-06-01T08:00:00+02:00", 0.0),
        ("2024-06-01T08:15:00+02:00", 512.0),
        ("2024-06-01T08:30:00+02:00", 1030.0),
    ]
    assert {s.end - s.start for s in result.samples} == {timedelta(minutes=15)}
    assert {s.source for s in result.samples} == {WearableSource.fitbit}


def test_fitbit_seconds_dataset_without_resting_rate_and_duplicate_points() -> None:
    doc = load("fitbit_heart_intraday_seconds_no_resting.json")
    result = parse_fitbit([doc], user_id="u1", tz=LA, device="Charge 6")
    assert result.skipped["fitbit:heart:no_resting_heart_rate"] == 1
    ids = [s.sample_id for s in result.samples]
    assert len(ids) == 3 and len(set(ids)) == 2  # the duplicated point has the same id
    assert result.samples[0].end - result.samples[0].start == timedelta(seconds=1)


def test_fitbit_error_names_the_dataset_entry() -> None:
    with pytest.raises(ParseError) as caught:
        parse_fitbit([load("fitbit_steps_bad_time.json")], user_id="u1", tz=LA)
    assert caught.value.location == "documents[0].activities-steps-intraday.dataset[1].time"
    assert "'8h01'" in str(caught.value)


def test_fitbit_without_the_summary_entry_says_the_day_is_missing() -> None:
    doc = load("fitbit_steps_intraday_15min.json")
    del doc["activities-steps"]
    with pytest.raises(ParseError, match=r"documents\[0\]\.activities-steps: missing"):
        parse_fitbit([doc], user_id="u1", tz=LA)


# Shapes: Fitbit Web API "Get Heart Rate Intraday by Interval" (start and end dates, at most
# 24 hours: /activities/heart/date/2024-06-01/2024-06-02/1min/time/23:00/00:30.json) and
# "by Date", whose documented example response says "dateTime": "today" (and "value": "64.2").


def test_fitbit_interval_across_midnight_moves_to_the_next_day() -> None:
    doc = load("fitbit_heart_intraday_interval_midnight.json")
    result = parse_fitbit([doc], user_id="u1", tz=LA)
    beats = by_metric(result.samples, Metric.heart_rate)
    assert [b.start.isoformat() for b in beats] == [
        "2024-06-01T23:02:00-07:00",
        "2024-06-01T23:59:00-07:00",
        "2024-06-02T00:00:00-07:00",  # was 2024-06-01T00:00, 24 hours early
        "2024-06-02T00:30:00-07:00",
    ]
    resting = by_metric(result.samples, Metric.resting_heart_rate)
    assert [r.day.isoformat() for r in resting] == ["2024-06-01", "2024-06-02"]


def test_fitbit_repeated_hour_when_clocks_fall_back_keeps_every_minute() -> None:
    result = parse_fitbit([load("fitbit_heart_intraday_dst_fallback.json")], user_id="u1", tz=LA)
    beats = by_metric(result.samples, Metric.heart_rate)
    assert len(beats) == 124 and len({b.sample_id for b in beats}) == 124
    first, second = (b for b in beats if b.start.strftime("%H:%M") == "01:00")
    assert (first.start.isoformat(), second.start.isoformat()) == (
        "2024-11-03T01:00:00-07:00",
        "2024-11-03T01:00:00-08:00",
    )
    instants = [b.start.astimezone(UTC) for b in beats]
    assert instants == sorted(instants) and instants[-1] - instants[0] == timedelta(
        hours=2, minutes=3
    )


def test_fitbit_repeated_hour_with_a_fixed_offset_asks_for_the_zone() -> None:
    doc = load("fitbit_heart_intraday_dst_fallback.json")
    with pytest.raises(ParseError) as caught:
        parse_fitbit([doc], user_id="u1", tz=fixed_offset(-25_200_000))
    assert caught.value.location == "documents[0].activities-heart-intraday.dataset[62].time"
    assert "01:59:00 to 01:00:00" in caught.value.message and "IANA" in caught.value.message


def test_fitbit_documented_today_is_the_users_today() -> None:
    doc = load("fitbit_heart_intraday_today.json")
    result = parse_fitbit([doc], user_id="u1", tz=LA, today=date(2024, 6, 1))
    assert [s.start.isoformat() for s in result.samples][:2] == [
        "2024-06-01T00:00:00-07:00",
        "2024-06-01T00:00:10-07:00",
    ]
    assert result.skipped["fitbit:heart:no_resting_heart_rate"] == 1  # "value": "64.2"
    (first, *_) = parse_fitbit([doc], user_id="u1", tz=LA).samples
    assert first.start.date() == datetime.now(LA).date()


# ---- Oura --------------------------------------------------------------------------------


def test_oura_collections() -> None:
    result = parse_oura(
        {
            "daily_sleep": load("oura_daily_sleep.json"),
            "sleep": load("oura_sleep.json"),
            "heartrate": load("oura_heartrate.json"),
        },
        user_id="u2",
    )
    (score,) = by_metric(result.samples, Metric.sleep_score)
    assert score.value == 73 and score.day.isoformat() == "2024-03-10"
    assert result.skipped["oura:daily_sleep:no_score"] == 1
    night, nap = by_metric(result.samples, Metric.sleep)
    assert (night.value, night.unit) == (25200.0, "s")
    # Bed at 23:10 PST on the 9th, up at 07:40 PDT: the night belongs to the 10th.
    assert night.day.isoformat() == "2024-03-10"
    assert night.end - night.start == timedelta(hours=7, minutes=30)
    assert nap.value == 1200
    (resting,) = by_metric(result.samples, Metric.resting_heart_rate)  # long_sleep only
    assert resting.value == 49
    beats = by_metric(result.samples, Metric.heart_rate)
    assert [b.value for b in beats] == [52, 97, 97]
    assert beats[1].sample_id == beats[2].sample_id
    assert beats[0].attributes == {"context": "rest"}


def test_oura_error_names_the_item_field() -> None:
    doc = load("oura_heartrate.json")
    doc["data"][1]["timestamp"] = "2024-03-10 18:30"
    with pytest.raises(ParseError) as caught:
        parse_oura({"heartrate": doc}, user_id="u2")
    assert caught.value.location == "heartrate.data[1].timestamp"
    assert "no UTC offset" in str(caught.value)


# Shapes of oura_sleep_types.json and oura_heartrate_utc.json: Oura API v2 OpenAPI,
# PublicModifiedSleepModel (type: deleted | sleep | long_sleep | late_nap | rest; "day: Day
# that the sleep belongs to"; bedtime_* localized) and PublicHeartRateRow (timestamp: UTC).
PARIS = zone("Europe/Paris")


def test_oura_rest_and_deleted_sleep_periods_are_not_sleep() -> None:
    result = parse_oura({"sleep": load("oura_sleep_types.json")}, user_id="u2")
    sleeps = by_metric(result.samples, Metric.sleep)
    assert [s.value for s in sleeps] == [25860, 1980, 14100]  # long_sleep, late_nap, long_sleep
    assert result.skipped == Counter({"oura:sleep:rest": 1, "oura:sleep:deleted": 1})


def test_oura_sleep_belongs_to_ouras_own_day() -> None:
    result = parse_oura({"sleep": load("oura_sleep_types.json")}, user_id="u2")
    sleeps = by_metric(result.samples, Metric.sleep)
    # A nap ended after Oura's 6 pm day change and an evening long sleep count for the next
    # day, as Oura's "day" says; the wake-up day would be one day early for both.
    assert [s.day.isoformat() for s in sleeps] == ["2024-03-30", "2024-03-31", "2024-04-02"]
    assert [s.end.date().isoformat() for s in sleeps] == ["2024-03-30", "2024-03-30", "2024-04-01"]
    resting = by_metric(result.samples, Metric.resting_heart_rate)
    assert [(r.value, r.day.isoformat()) for r in resting] == [
        (47, "2024-03-30"),
        (50, "2024-04-02"),
    ]
    for sample in result.samples:
        assert WearableSample.model_validate_json(sample.model_dump_json()).day == sample.day


def test_oura_sleep_with_a_bad_day_names_it() -> None:
    doc = load("oura_sleep_types.json")
    doc["data"][1]["day"] = "2024-04-09"
    with pytest.raises(ParseError) as caught:
        parse_oura({"sleep": doc}, user_id="u2")
    assert caught.value.location == "sleep.data[1].day"
    assert "'2024-04-09'" in caught.value.message


@pytest.mark.parametrize("tz", [PARIS, None], ids=["zone given", "zone of the sleep documents"])
def test_oura_heart_rate_is_bucketed_in_the_users_time_zone(tz: tzinfo | None) -> None:
    collections = {
        "heartrate": load("oura_heartrate_utc.json"),
        "sleep": load("oura_sleep_types.json"),
    }
    result = parse_oura(collections, user_id="u2", tz=tz)
    beats = by_metric(result.samples, Metric.heart_rate)
    # 23:30 UTC is 00:30 in Paris: the next day there (before and after the DST change).
    assert [b.day.isoformat() for b in beats] == ["2024-03-30", "2024-03-31", "2024-04-01"]
    assert [b.start.isoformat() for b in beats][1:] == [
        "2024-03-31T00:30:00+01:00",
        "2024-04-01T00:30:00+02:00",
    ]
    # Same instants, same ids as before: re-uploads still dedupe.
    assert (
        beats[0].sample_id
        == parse_oura({"heartrate": load("oura_heartrate_utc.json")}, user_id="u2")
        .samples[0]
        .sample_id
    )


# ---- Apple Health ------------------------------------------------------------------------


def test_apple_health_samples_are_the_contract_s_own() -> None:
    """The parser builds samples without pydantic's passes: each must be what validating its
    fields gives, with the id that ``sample_id_for`` gives."""
    samples = parse_apple_health(FIXTURES / "apple_health_export.xml", user_id="u3").samples
    assert samples
    for s in samples:
        assert WearableSample.model_validate(s.model_dump()) == s
        assert WearableSample.model_validate_json(s.model_dump_json()) == s
        expected = sample_id_for(s.user_id, s.source, s.metric, s.start, s.end, s.device)
        assert s.sample_id == expected and str(s.sample_id) == str(expected)
        assert s.sample_id.version == 5 and hash(s.sample_id) == hash(expected)


def test_apple_health_export() -> None:
    result = parse_apple_health(FIXTURES / "apple_health_export.xml", user_id="u3")
    samples = result.samples
    steps = by_metric(samples, Metric.steps)
    assert [(s.device, s.value) for s in steps] == [
        ("Anna\u2019s iPhone (iPhone14,2)", 800.0),
        ("Anna\u2019s iPhone (iPhone14,2)", 800.0),
        ("Anna\u2019s Apple Watch (Watch6,1)", 760.0),
        ("Health", 1200.0),
    ]
    # The same record exported twice (only the HKDevice address differs) has one id.
    assert steps[0].sample_id == steps[1].sample_id
    beats = by_metric(samples, Metric.heart_rate)
    # 01:30 happens twice on 2024-11-03 (fall back): one hour apart, two samples.
    assert beats[1].start - beats[0].start == timedelta(hours=1)
    assert beats[0].sample_id != beats[1].sample_id
    assert {b.unit for b in beats} == {"count/min"}
    sleep = by_metric(samples, Metric.sleep)
    assert [s.value / 60 for s in sleep] == [150.0, 40.0]  # InBed and Awake are not sleep
    assert [s.day.isoformat() for s in sleep] == ["2024-11-03", "2024-11-03"]
    (distance,) = by_metric(samples, Metric.distance)
    assert (distance.value, distance.unit) == (0.5, "mi")
    assert result.skipped == Counter(
        {
            "apple_health:HKQuantityTypeIdentifierBodyMass": 1,
            "apple_health:HKQuantityTypeIdentifierBloodPressureSystolic": 1,
            "apple_health:sleep:HKCategoryValueSleepAnalysisInBed": 1,
            "apple_health:sleep:HKCategoryValueSleepAnalysisAwake": 1,
        }
    )
    for sample in samples:  # model_construct in the hot loop must still yield valid samples
        assert WearableSample.model_validate(sample.model_dump()) == sample


def test_apple_health_bad_date_names_line_and_attribute() -> None:
    with pytest.raises(ParseError) as caught:
        parse_apple_health(FIXTURES / "apple_health_bad_date.xml", user_id="u3")
    assert caught.value.location == "line 26, Record #4, attribute startDate"
    assert "2024-11-02T10:00:00Z" in str(caught.value)


def test_apple_health_truncated_file_names_line_and_column() -> None:
    with pytest.raises(ParseError, match=r"^line 27, column \d+: malformed XML"):
        parse_apple_health(FIXTURES / "apple_health_truncated.xml", user_id="u3")


def test_apple_health_wrong_root(tmp_path: Path) -> None:
    path = tmp_path / "export.xml"
    path.write_text("<?xml version='1.0'?><ClinicalRecord/>")
    with pytest.raises(ParseError, match="not <HealthData>"):
        list(iter_apple_health(path, user_id="u3"))


def export_with(tmp_path: Path, doctype: str, body: str) -> Path:
    path = tmp_path / "export.xml"
    path.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}\n<HealthData locale="en_US">\n'
        f"{body}\n</HealthData>\n",
        encoding="utf-8",
    )
    return path


STEP = (
    ' <Record type="HKQuantityTypeIdentifierStepCount" sourceName="{source}" unit="{unit}"'
    ' startDate="2024-11-02 10:00:00 -0700" endDate="2024-11-02 10:30:00 -0700" value="12"/>'
)


def test_apple_health_entity_declarations_are_refused_before_anything_expands(
    tmp_path: Path,
) -> None:
    doctype = (
        '<!DOCTYPE HealthData [\n<!ENTITY a "'
        + "x" * 1000
        + '">\n'
        + "".join(
            f'<!ENTITY {n} "{("&" + p + ";") * 10}">\n' for p, n in zip("abcd", "bcde", strict=True)
        )
        + "]>"
    )  # &e; is 10 MB: expat's ratio limit would let it through
    path = export_with(tmp_path, doctype, STEP.format(source="&e;", unit="count"))
    with pytest.raises(ParseError) as caught:
        list(iter_apple_health(path, user_id="u3"))
    assert caught.value.location == "line 3"
    assert "declares an entity" in caught.value.message
    assert "Apple Health exports declare none" in caught.value.message


def test_apple_health_doctype_padded_past_the_limit_is_refused_in_constant_memory(
    tmp_path: Path,
) -> None:
    import tracemalloc

    padding = ("<!-- " + "p" * 10_000 + " -->\n") * 200  # 2 MB of comments in the DTD
    step = STEP.format(source="Health", unit="count")
    path = export_with(tmp_path, f"<!DOCTYPE HealthData [\n{padding}]>", step)
    tracemalloc.start()
    try:
        with pytest.raises(ParseError, match=r"DOCTYPE .* longer than"):
            list(iter_apple_health(path, user_id="u3"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # the head of the file only, not the whole padded DTD


def test_apple_health_other_encodings_are_refused(tmp_path: Path) -> None:
    # The DOCTYPE is found in the bytes, so the bytes must be UTF-8 (as Apple writes them).
    step = STEP.format(source="Health", unit="count")
    path = export_with(tmp_path, "", step)
    path.write_bytes(path.read_bytes().replace(b"UTF-8", b"cp500"))
    with pytest.raises(ParseError, match="declares encoding 'cp500', not UTF-8"):
        list(iter_apple_health(path, user_id="u3"))
    path.write_bytes(export_with(tmp_path, "", step).read_text().encode("utf-16"))
    with pytest.raises(ParseError, match="not UTF-8 encoded"):
        list(iter_apple_health(path, user_id="u3"))


def test_apple_health_a_tag_longer_than_the_limit_is_refused_early(tmp_path: Path) -> None:
    # expat 2.5 re-scans an unfinished token on every 16 KiB it is fed: a 20 MB attribute
    # took 74 s of CPU (holding the GIL). Records are a few hundred bytes long.
    import time

    huge = STEP.format(source="x" * 3_000_000, unit="count")
    path = export_with(tmp_path, "", STEP.format(source="Health", unit="count") + "\n" + huge)
    started = time.process_time()
    with pytest.raises(ParseError) as caught:
        list(iter_apple_health(path, user_id="u3"))
    assert time.process_time() - started < 1.0
    assert caught.value.location.startswith("byte ")
    assert "longer than 1024 KiB" in caught.value.message


def test_apple_health_entity_references_without_a_dtd_are_malformed(tmp_path: Path) -> None:
    path = export_with(tmp_path, "", STEP.format(source="&e;", unit="count"))
    # libxml2's wording: the reference has no DTD to define it.
    malformed = r"^line 4, column \d+: malformed XML \(Entity 'e' not defined"
    with pytest.raises(ParseError, match=malformed):
        list(iter_apple_health(path, user_id="u3"))


def test_apple_health_ios16_export_with_apples_broken_dtd() -> None:
    import xml.etree.ElementTree as ET

    path = FIXTURES / "apple_health_export_ios16.xml"
    # The fixture reproduces the public reports: the stdlib stops at line 156, column 0.
    with pytest.raises(ET.ParseError, match=r"syntax error: line 156, column 0"):
        ET.parse(path)
    result = parse_apple_health(path, user_id="u3")
    assert [(s.metric, s.value) for s in result.samples] == [
        (Metric.steps, 914.0),
        (Metric.heart_rate, 88.0),
        (Metric.sleep, 4530.0),
    ]
    assert result.samples[1].device == "Anna\u2019s Apple Watch (Watch6,1)"


def test_apple_health_control_characters_do_not_lose_records() -> None:
    result = parse_apple_health(FIXTURES / "apple_health_control_chars.xml", user_id="u3")
    assert [(s.device, s.value) for s in result.samples] == [
        ("Anna\u2019s iPhone (iPhone14,2)", 800.0),  # the vertical tab became a space
        ("Anna\u2019s Apple Watch", 58.0),
        ("Health ", 1200.0),
    ]


def test_apple_health_bad_date_after_a_doctype_still_names_its_line(tmp_path: Path) -> None:
    # Dropping the DTD keeps every byte position: errors name the same lines as before.
    text = (FIXTURES / "apple_health_export_ios16.xml").read_text(encoding="utf-8")
    broken = text.replace('startDate="2022-10-01 09:18:05 -0700"', 'startDate="yesterday"')
    path = tmp_path / "export.xml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ParseError) as caught:
        parse_apple_health(path, user_id="u3")
    line = 1 + text[: text.index("HKQuantityTypeIdentifierHeartRate")].count("\n")
    assert caught.value.location == f"line {line}, Record #2, attribute startDate"


def test_apple_health_samples_are_valid_downstream(tmp_path: Path) -> None:
    long_source = "Anna\u2019s " + "very " * 80 + "long iPhone"
    path = export_with(tmp_path, "", STEP.format(source=long_source, unit="count"))
    (sample,) = parse_apple_health(path, user_id="u3").samples
    assert len(sample.device) == 256 and sample.device.endswith("\u2026")
    # What the API accepts is what the lake sink will accept (it validates the JSON).
    assert WearableSample.model_validate_json(sample.model_dump_json()) == sample

    path = export_with(tmp_path, "", STEP.format(source="Health", unit="x" * 33))
    with pytest.raises(ParseError) as caught:
        parse_apple_health(path, user_id="u3")
    assert caught.value.location == "line 4, Record #1, attribute unit"
    assert "33 characters" in caught.value.message and "at most 32" in caught.value.message


def test_apple_health_refuses_a_user_id_the_contract_refuses(tmp_path: Path) -> None:
    path = export_with(tmp_path, "", STEP.format(source="Health", unit="count"))
    with pytest.raises(ValueError, match="user id"):
        list(iter_apple_health(path, user_id="not a user id!"))


def many_steps(count: int, *, bad: int | None = None) -> str:
    """``count`` step records a minute apart, one per line; record ``bad`` (1-based) with
    a startDate that is not a date."""
    lines = []
    for i in range(count):
        start = datetime(2024, 11, 2, 10, 0, tzinfo=UTC) + timedelta(minutes=i)
        stamp = start.strftime("%Y-%m-%d %H:%M:%S +0000")
        begin = "yesterday" if bad == i + 1 else stamp
        lines.append(
            f' <Record type="HKQuantityTypeIdentifierStepCount" sourceName="Health" '
            f'unit="count" startDate="{begin}" endDate="{stamp}" value="{i}"/>'
        )
    return "\n".join(lines)


def test_apple_health_rows_are_the_samples_fields_chunk_by_chunk(tmp_path: Path) -> None:
    # Enough records for several chunks (READ_BYTES each): the rows come one list per chunk read.
    count = 3 * READ_BYTES // 150
    path = export_with(tmp_path, "", many_steps(count))
    skipped: dict[str, int] = {}
    chunks = list(iter_apple_health_rows(path, user_id="u3", skipped=skipped))
    assert len(chunks) > 2 and skipped == {}
    rows = [row for chunk in chunks for row in chunk]
    samples = parse_apple_health(path, user_id="u3").samples
    assert len(rows) == len(samples) == count
    for row, s in zip(rows, samples, strict=True):
        assert row == (s.sample_id, s.metric, s.value, s.unit, s.start, s.end, s.device)
        assert s.sample_id == sample_id_for(s.user_id, s.source, s.metric, s.start, s.end, s.device)
    assert [s.value for s in samples] == [float(i) for i in range(count)]


def test_apple_health_a_bad_record_in_a_later_chunk_names_its_own_line(tmp_path: Path) -> None:
    # Records are judged per chunk and their line found by a second pass: the ordinal must
    # count across chunks (line 4 holds record #1).
    count = 3 * READ_BYTES // 150
    bad = count - 7
    path = export_with(tmp_path, "", many_steps(count, bad=bad))
    with pytest.raises(ParseError) as caught:
        list(iter_apple_health_rows(path, user_id="u3"))
    assert caught.value.location == f"line {bad + 3}, Record #{bad}, attribute startDate"
    assert "'yesterday' is not a date" in caught.value.message


def test_apple_health_a_bad_record_is_named_before_later_malformed_xml(tmp_path: Path) -> None:
    path = export_with(tmp_path, "", many_steps(3, bad=2) + "\n <Record <broken")
    with pytest.raises(ParseError) as caught:
        list(iter_apple_health(path, user_id="u3"))
    assert caught.value.location == "line 5, Record #2, attribute startDate"


# ---- audio --------------------------------------------------------------------------------


def test_wav_metadata(tmp_path: Path) -> None:
    path = tmp_path / "note.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 12000)
    meta = audio_metadata(path)
    assert (meta.format, meta.duration_s, meta.sample_rate, meta.channels) == ("wav", 1.5, 8000, 1)
    assert meta.size_bytes == path.stat().st_size
    import hashlib

    assert meta.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def crc(data: bytes, poly: int, bits: int) -> int:
    """The CRC-8 (poly 0x07) or CRC-16 (poly 0x8005) of FLAC frames (RFC 9639, MSB first)."""
    value, top, mask = 0, 1 << (bits - 1), (1 << bits) - 1
    for byte in data:
        value ^= byte << (bits - 8)
        for _ in range(8):
            value = ((value << 1) ^ poly if value & top else value << 1) & mask
    return value


def flac(seconds: float, rate: int = 44100, block: int = 4096) -> bytes:
    """A decodable stereo 16-bit FLAC of silence, built from RFC 9639: "fLaC", STREAMINFO,
    then one frame per block, each two CONSTANT subframes (sample rate code 9: 44.1 kHz)."""
    total = round(seconds * rate)
    frames = []
    for number, first in enumerate(range(0, total, block)):
        size = min(block, total - first)
        code, extra = (0b1100, b"") if size == 4096 else (0b0111, (size - 1).to_bytes(2, "big"))
        header = bytes([0xFF, 0xF8, code << 4 | 0b1001, 0b0001 << 4 | 0b100 << 1])
        header += chr(number).encode() + extra  # the frame number, "UTF-8" coded
        header += bytes([crc(header, 0x07, 8)])
        body = header + (b"\x00" + b"\x00\x00") * 2  # subframe header 0 (CONSTANT), value 0
        frames.append(body + crc(body, 0x8005, 16).to_bytes(2, "big"))
    sizes = [len(f) for f in frames]
    packed = (rate << 44) | (1 << 41) | (15 << 36) | total
    streaminfo = struct.pack(">HH", block, block) + min(sizes).to_bytes(3, "big")
    streaminfo += max(sizes).to_bytes(3, "big") + packed.to_bytes(8, "big") + b"\x00" * 16
    return b"fLaC" + bytes([0x80, 0, 0, 34]) + streaminfo + b"".join(frames)


def id3v2(payload: bytes, *, footer: bool = False) -> bytes:
    """An ID3v2.4 tag: "ID3", version 4.0, flags, size as 4 syncsafe bytes (7 bits each)."""
    size = len(payload)
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    header = b"ID3\x04\x00" + bytes([0x10 if footer else 0]) + syncsafe
    return header + payload + (b"3DI" + header[3:] if footer else b"")


def test_flac_metadata(tmp_path: Path) -> None:
    path = tmp_path / "note.flac"
    path.write_bytes(flac(3.0))
    meta = audio_metadata(path)
    assert (meta.format, meta.duration_s, meta.sample_rate, meta.channels) == (
        "flac",
        3.0,
        44100,
        2,
    )


@pytest.mark.parametrize("footer", [False, True])
def test_flac_behind_an_id3_tag(tmp_path: Path, footer: bool) -> None:
    frame = b"TIT2" + (13).to_bytes(4, "big") + b"\x00\x00\x03Voice memo 1"
    path = tmp_path / "memo.flac"
    path.write_bytes(id3v2(frame + b"\x00" * 300, footer=footer) + flac(2.5))
    meta = audio_metadata(path)
    assert (meta.format, meta.duration_s, meta.channels) == ("flac", 2.5, 2)
    import hashlib

    assert meta.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()  # the whole file


def test_truncated_flac_is_refused(tmp_path: Path) -> None:
    whole = flac(139.0)
    path = tmp_path / "cut.flac"
    path.write_bytes(whole[:86])  # STREAMINFO still says 139 s
    with pytest.raises(ParseError) as caught:
        audio_metadata(path)
    assert "truncated" in caught.value.message and "139" in caught.value.message
    path.write_bytes(whole[:42])  # metadata only, no frame at all
    with pytest.raises(ParseError, match="no audio frame"):
        audio_metadata(path)
    path.write_bytes(whole)
    assert audio_metadata(path).duration_s == 139.0


def test_unknown_audio_format(tmp_path: Path) -> None:
    path = tmp_path / "note.mp3"
    path.write_bytes(b"ID3\x04" + b"\x00" * 64)
    with pytest.raises(ParseError, match="unsupported audio format"):
        audio_metadata(path)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("1970-01-01 00:00:00 +0000", "1970-01-01 00:30:00 +0000", "startDate"),
        ("0001-01-01 00:00:00 +0000", "0001-01-01 00:30:00 +0000", "startDate"),
        ("9999-12-31 00:00:00 +0000", "9999-12-31 00:30:00 +0000", "endDate"),
    ],
)
def test_apple_health_records_dated_by_an_unset_clock_are_refused(
    tmp_path: Path, start: str, end: str, field: str
) -> None:
    record = STEP.format(source="iPhone", unit="count").replace(
        'startDate="2024-11-02 10:00:00 -0700" endDate="2024-11-02 10:30:00 -0700"',
        f'startDate="{start}" endDate="{end}"',
    )
    with pytest.raises(ParseError, match=field):
        parse_apple_health(export_with(tmp_path, "", record), user_id="u1")


@pytest.mark.parametrize("year", [1, 1970, 9999])
def test_a_sample_outside_the_plausible_window_does_not_validate(year: int) -> None:
    start = datetime(year, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="start: "):
        WearableSample.of(
            user_id="u1",
            source=WearableSource.oura,
            metric=Metric.steps,
            value=1,
            unit="count",
            start=start,
            end=start,
        )


def test_apple_health_dates_parsed_per_chunk_are_the_per_record_parse_s(tmp_path: Path) -> None:
    # A chunk's new dates are parsed together (numpy over their bytes, fromisoformat mapped):
    # the same datetime, sample-id text and POSIX seconds as the per-record parse, for
    # leap days, DST, every offset form, the window's edges.
    from core.wearables.parsers import apple_health

    raws = [
        f"{day} {time_of_day} {offset}"
        for day in (
            "2000-01-01",
            "2000-02-29",
            "2004-03-01",
            "2024-03-10",
            "2024-11-03",
            "2024-12-31",
            "2038-01-19",
            "2100-03-01",
        )
        for time_of_day in ("00:00:00", "01:59:59", "12:30:07", "23:59:59")
        for offset in ("+0000", "-0000", "-0800", "+0545", "+1400", "-1200", "+1800", "-1800")
    ]
    records = [{"startDate": raw, "endDate": raw} for raw in raws]
    apple_health._INSTANTS.clear()
    apple_health._parse_instants(records)
    batched = {raw: apple_health._INSTANTS[raw] for raw in raws}
    apple_health._INSTANTS.clear()
    for raw in raws:
        assert apple_health._instant(raw, "startDate", {}) == batched[raw], raw
        instant = batched[raw][0]
        assert batched[raw][1] == f"{instant.timestamp():.3f}|".encode()
    # One refused date leaves the chunk to the per-record parse, which says why.
    for bad in (
        "2024-02-30 00:00:00 +0000",
        "2024-01-01 00:00:00 +1801",
        "2024-01-01 00:00:60 +0000",
        "2024-01-01T00:00:00 +0000",
        "\u0662024-01-01 00:00:00 +0000",
        "2024-01-01 00:00:00 +0000\n",
    ):
        apple_health._INSTANTS.clear()
        apple_health._parse_instants([*records, {"startDate": bad, "endDate": raws[0]}])
        assert apple_health._INSTANTS == {}, bad
    path = export_with(
        tmp_path,
        "",
        STEP.format(source="Health", unit="count").replace(
            "2024-11-02 10:00:00 -0700", "2024-11-02 10:00:00 +1900"
        ),
    )
    with pytest.raises(ParseError, match=r"startDate: .*impossible UTC offset"):
        parse_apple_health(path, user_id="u3")
