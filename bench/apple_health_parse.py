"""Benchmark: parse a generated Apple Health export.xml of ~500 MB as a stream.

Prints MB/s, records/s and peak RSS (``resource.getrusage``), and writes them to
``bench/results/apple_health_parse.json``. Two forms of our parse are timed: the
``WearableSample`` models the upload route consumes (``iter_apple_health``) and the plain
rows they are built from (``iter_apple_health_rows``). The ceiling, measured over the same
file in the same run: a bare expat pass (``pyexpat`` with no handler: the C tokenizer
alone), expat calling one Python handler per start tag that only counts ``<Record>``, and
libxml2 (lxml's parser target, what the parser uses) calling the same counting handler:
the least any parser written in Python pays to see each record. Goal (#19): our parse
>= 50 % of the bare pass's MB/s, peak RSS flat. When the compiled tokenizer
(native/stride_native) is built, both forms are timed with it too (``native_*``), over
the same file in the same run; the default the route uses is the compiled one when built.

``--alternatives`` also times, in the same run, the other front ends measured for #19:
expat with ``ordered_attributes``/``specified_attributes``/``buffer_text``, and lxml's
``iterparse`` (libxml2's pull parser) on ``start`` and on ``end`` events, clearing
each element (all counting ``<Record>`` only).
``records_per_cpu_s`` divides by the parse's CPU time, which stays comparable on a
machine shared with other work (wall-clock ``records_per_s`` does not).

``--bomb-mb N`` instead times an entity-expansion upload of ~N MB (nested entities used in
a ``Record`` attribute, padded with comments so expat's amplification ratio never trips)
and reports its time, peak RSS and outcome; it writes nothing.

    .venv/bin/python -m bench.apple_health_parse [--mb 500] [--alternatives] [--bomb-mb 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.parsers import expat

from lxml import etree

from core.wearables.contracts import ParseError
from core.wearables.parsers.apple_health import (
    iter_apple_health,
    iter_apple_health_rows,
    native_available,
)

RESULTS = Path(__file__).resolve().parent / "results" / "apple_health_parse.json"
HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>
<!ATTLIST HealthData locale CDATA #REQUIRED>
]>
<HealthData locale="en_US">
 <ExportDate value="2024-11-05 09:12:44 -0800"/>
 <Me HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexNotSet"/>
"""
DEVICE = (
    "&lt;&lt;HKDevice: 0x283f1c0c2&gt;, name:Apple Watch, manufacturer:Apple Inc., "
    "model:Watch, hardware:Watch6,1, software:11.0&gt;"
)
KINDS = [
    ("HKQuantityTypeIdentifierHeartRate", "count/min", "62"),
    ("HKQuantityTypeIdentifierStepCount", "count", "118"),
    ("HKQuantityTypeIdentifierActiveEnergyBurned", "Cal", "4.2"),
    ("HKQuantityTypeIdentifierBodyMass", "kg", "61.2"),  # skipped: not a Stride metric
]


def generate(path: Path, target_bytes: int) -> int:
    """Write an export of about ``target_bytes``; returns the number of records."""
    start = datetime(2021, 1, 1, tzinfo=UTC)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        written = len(HEADER)
        while written < target_bytes:
            lines = []
            for _ in range(10_000):
                kind, unit, value = KINDS[count % len(KINDS)]
                at = start + timedelta(minutes=count)
                offset = "-0700" if 3 <= at.month <= 10 else "-0800"
                stamp = at.strftime("%Y-%m-%d %H:%M:%S ") + offset
                lines.append(
                    f' <Record type="{kind}" sourceName="Anna\u2019s Apple Watch" '
                    f'sourceVersion="11.0" device="{DEVICE}" unit="{unit}" '
                    f'creationDate="{stamp}" startDate="{stamp}" endDate="{stamp}" '
                    f'value="{value}"/>\n'
                )
                count += 1
            chunk = "".join(lines)
            out.write(chunk)
            written += len(chunk.encode())
        out.write("</HealthData>\n")
    return count


def generate_bomb(path: Path, target_bytes: int) -> None:
    """An export whose one ``Record`` attribute expands ~100x the file size (expat's ratio)."""
    levels = ['<!ENTITY e0 "' + "x" * 1000 + '">']
    levels += [f'<!ENTITY e{i} "' + f"&e{i - 1};" * 10 + '">' for i in range(1, 6)]
    padding = "<!-- " + "p" * 1_000_000 + " -->\n"
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE HealthData [\n')
        out.write("\n".join(levels) + "\n")
        written = 0
        while written < target_bytes:
            out.write(padding)
            written += len(padding)
        out.write(']>\n<HealthData locale="en_US">\n')
        # e5 is 100 MB; the attribute expands to ~50x the file, half expat's ratio limit.
        copies = max(1, target_bytes // 2_000_000)
        out.write(' <Record type="HKQuantityTypeIdentifierStepCount" sourceName="')
        out.write("&e5;" * copies)
        out.write('" unit="count" startDate="2024-03-10 01:59:00 -0800" ')
        out.write('endDate="2024-03-10 02:00:00 -0800" value="1"/>\n</HealthData>\n')


def bomb(megabytes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="stride-bench-") as folder:
        path = Path(folder) / "export.xml"
        generate_bomb(path, megabytes * 1_000_000)
        size = path.stat().st_size
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        try:
            outcome = f"accepted {sum(1 for _ in iter_apple_health(path, user_id='bench'))} samples"
        except ParseError as exc:
            outcome = f"refused: {exc}"
        elapsed = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{'file_mb':>26}: {size / 1e6:.1f}")
    print(f"{'seconds':>26}: {elapsed:.3f}")
    print(f"{'peak_rss_mb_before_parse':>26}: {rss_before / 1024:.1f}")
    print(f"{'peak_rss_mb':>26}: {rss_after / 1024:.1f}")
    print(f"{'outcome':>26}: {outcome[:300]}")


def expat_pass(path: Path, *, count_records: bool, ordered: bool = False) -> tuple[float, int]:
    """CPU seconds of one expat pass over ``path`` (and the Records counted, if asked)."""
    parser = expat.ParserCreate()
    records = 0
    if ordered:
        parser.ordered_attributes = True
        parser.specified_attributes = True
        parser.buffer_text = True
    if count_records:

        def start(name: str, _attrs: object) -> None:
            nonlocal records
            if name == "Record":
                records += 1

        parser.StartElementHandler = start
    started = time.process_time()
    with path.open("rb") as fh:
        parser.ParseFile(fh)
    return time.process_time() - started, records


class _CountingTarget:
    def __init__(self) -> None:
        self.records = 0

    def start(self, tag: str, _attrib: dict[str, str]) -> None:
        if tag == "Record":
            self.records += 1

    def close(self) -> int:
        return self.records


SAFE = {"resolve_entities": False, "no_network": True, "huge_tree": False}


def libxml2_target_pass(path: Path) -> tuple[float, int]:
    """CPU seconds of libxml2 (lxml's feed parser) calling a counting ``start`` per tag."""
    parser = etree.XMLParser(target=_CountingTarget(), **SAFE)  # type: ignore[call-overload]
    started = time.process_time()
    with path.open("rb") as fh:
        while chunk := fh.read(64 * 1024):
            parser.feed(chunk)
    records: int = parser.close()
    return time.process_time() - started, records


def iterparse_pass(path: Path, event: str) -> tuple[float, int]:
    """CPU seconds of lxml's ``iterparse`` over the Records, clearing what was seen."""
    records = 0
    started = time.process_time()
    for _, element in etree.iterparse(path, events=(event,), tag="Record", **SAFE):
        records += 1
        if event == "end":
            element.clear()
        while element.getprevious() is not None:  # the earlier siblings are complete
            del element.getparent()[0]
    return time.process_time() - started, records


def our_pass(path: Path, *, rows: bool, native: bool = False) -> tuple[float, int, dict[str, int]]:
    """CPU seconds of our parse (rows or models; the Python or the compiled tokenizer),
    the samples and the skip counts."""
    samples = 0
    skipped: dict[str, int] = {}
    started = time.process_time()
    if rows:
        for chunk in iter_apple_health_rows(path, user_id="bench", skipped=skipped, native=native):
            samples += len(chunk)
    else:
        for _sample in iter_apple_health(path, user_id="bench", skipped=skipped, native=native):
            samples += 1
    return time.process_time() - started, samples, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=500, help="size of the generated export")
    parser.add_argument(
        "--alternatives", action="store_true", help="also time the other front ends measured"
    )
    parser.add_argument("--bomb-mb", type=int, help="time an entity-expansion upload instead")
    args = parser.parse_args()
    if args.bomb_mb:
        bomb(args.bomb_mb)
        return
    with tempfile.TemporaryDirectory(prefix="stride-bench-") as folder:
        path = Path(folder) / "export.xml"
        # Generated in a child process, so this process's peak RSS is the parser's alone.
        with ProcessPoolExecutor(max_workers=1) as pool:
            records = pool.submit(generate, path, args.mb * 1_000_000).result()
        size = path.stat().st_size
        load_average = os.getloadavg()[0]
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        cpu, samples, skipped = our_pass(path, rows=False)
        elapsed = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rows_cpu, row_count, _ = our_pass(path, rows=True)
        assert row_count == samples, (row_count, samples)
        native: dict[str, float] = {}
        if native_available():
            # The compiled tokenizer (native/stride_native); its peak RSS after the Python
            # parse's (getrusage keeps the process's peak: it can only show growth).
            native_cpu, native_samples, native_skipped = our_pass(path, rows=False, native=True)
            assert (native_samples, native_skipped) == (samples, skipped)
            native["native_cpu_seconds"] = native_cpu
            native["native_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            native_rows_cpu, native_samples, _ = our_pass(path, rows=True, native=True)
            assert native_samples == samples
            native["native_rows_cpu_seconds"] = native_rows_cpu
        bare_cpu, _ = expat_pass(path, count_records=False)
        handler_cpu, counted = expat_pass(path, count_records=True)
        assert counted == records, (counted, records)
        libxml2_cpu, counted = libxml2_target_pass(path)
        assert counted == records, (counted, records)
        alternatives: dict[str, float] = {}
        if args.alternatives:
            ordered_cpu, counted = expat_pass(path, count_records=True, ordered=True)
            assert counted == records, (counted, records)
            alternatives["expat_ordered_attributes_handler"] = ordered_cpu
            for event in ("start", "end"):
                iter_cpu, counted = iterparse_pass(path, event)
                assert counted == records, (counted, records)
                alternatives[f"lxml_iterparse_{event}"] = iter_cpu
    mb = size / 1e6
    figures = {
        "file_mb": round(size / 1e6, 1),
        "records": records,
        "samples": samples,
        "skipped": sum(skipped.values()),
        "seconds": round(elapsed, 2),
        "mb_per_s": round(size / 1e6 / elapsed, 1),
        "records_per_s": round(records / elapsed),
        "cpu_seconds": round(cpu, 2),
        "records_per_cpu_s": round(records / cpu),
        "peak_rss_mb_before_parse": round(rss_before / 1024, 1),
        "peak_rss_mb": round(rss_after / 1024, 1),
        "mb_per_cpu_s": round(mb / cpu, 1),
        "rows_mb_per_cpu_s": round(mb / rows_cpu, 1),
        "bare_expat_mb_per_cpu_s": round(mb / bare_cpu, 1),
        "expat_record_handler_mb_per_cpu_s": round(mb / handler_cpu, 1),
        "libxml2_record_handler_mb_per_cpu_s": round(mb / libxml2_cpu, 1),
        **{f"{name}_mb_per_cpu_s": round(mb / c, 1) for name, c in alternatives.items()},
        **(
            {
                "native_mb_per_cpu_s": round(mb / native["native_cpu_seconds"], 1),
                "native_rows_mb_per_cpu_s": round(mb / native["native_rows_cpu_seconds"], 1),
                "native_records_per_cpu_s": round(records / native["native_cpu_seconds"]),
                "native_peak_rss_mb": round(native["native_peak_rss_mb"], 1),
                "native_ratio_to_bare_expat": round(bare_cpu / native["native_cpu_seconds"], 3),
                "native_rows_ratio_to_bare_expat": round(
                    bare_cpu / native["native_rows_cpu_seconds"], 3
                ),
                "native_speedup_over_python": round(cpu / native["native_cpu_seconds"], 2),
            }
            if native
            else {"native": "not built (scripts/setup.sh builds native/stride_native)"}
        ),
        "ratio_to_bare_expat": round(bare_cpu / cpu, 3),
        "rows_ratio_to_bare_expat": round(bare_cpu / rows_cpu, 3),
        "ratio_to_expat_record_handler": round(handler_cpu / cpu, 3),
        "ratio_to_libxml2_record_handler": round(libxml2_cpu / cpu, 3),
        "goal_ratio_to_bare_expat": 0.5,
        "load_average_1m_at_start": load_average,
        "python": platform.python_version(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for key, value in figures.items():
        print(f"{key:>40}: {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
