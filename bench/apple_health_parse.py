"""Benchmark: parse a generated Apple Health export.xml of ~500 MB as a stream.

Prints MB/s, records/s and peak RSS (``resource.getrusage``), and writes them to
``bench/results/apple_health_parse.json``. Goal: >= 20 MB/s in constant memory.

    .venv/bin/python -m bench.apple_health_parse [--mb 500]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.wearables.parsers.apple_health import iter_apple_health

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=500, help="size of the generated export")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stride-bench-") as folder:
        path = Path(folder) / "export.xml"
        # Generated in a child process, so this process's peak RSS is the parser's alone.
        with ProcessPoolExecutor(max_workers=1) as pool:
            records = pool.submit(generate, path, args.mb * 1_000_000).result()
        size = path.stat().st_size
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        samples = 0
        skipped: dict[str, int] = {}
        for _sample in iter_apple_health(path, user_id="bench", skipped=skipped):
            samples += 1
        elapsed = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures = {
        "file_mb": round(size / 1e6, 1),
        "records": records,
        "samples": samples,
        "skipped": sum(skipped.values()),
        "seconds": round(elapsed, 2),
        "mb_per_s": round(size / 1e6 / elapsed, 1),
        "records_per_s": round(records / elapsed),
        "peak_rss_mb_before_parse": round(rss_before / 1024, 1),
        "peak_rss_mb": round(rss_after / 1024, 1),
        "goal_mb_per_s": 20,
        "python": platform.python_version(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for key, value in figures.items():
        print(f"{key:>26}: {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
