"""The admin SQL page's cost in API memory for results of about 100 MB.

Starts a private PostgreSQL (the same supervisor and service declaration as ``stride up``),
migrates it, grants the read-only role, signs in a viewer and posts each of ``QUERIES``
(twenty 5 MB rows; a thousand 90 kB rows) to ``/admin/query`` and to ``/admin/query/csv`` of
the API as uvicorn runs it, ``--repeat`` times each after a warm-up query. For each: the
page's size, its time, and how far the API process's resident memory rose above what it was
before the request (its peak, ``VmHWM``, reset first).

``--code DIR`` (repeatable) measures the API of another checkout (e.g. the code before a
change: ``git archive main | tar -x -C /tmp/stride-main``). Prints the figures and writes
``bench/results/admin_query_memory.json``.

    .venv/bin/python -m bench.admin_query_memory [--repeat 3] [--code DIR]
"""

from __future__ import annotations

import argparse
import time
from itertools import product
from pathlib import Path

from bench.admin_api import (
    add_code_option,
    api_process,
    create_admin,
    measure_each,
    memory_kb,
    private_database,
    reset_peak_memory,
    signed_in,
    write_results,
)

RESULTS = Path(__file__).resolve().parent / "results" / "admin_query_memory.json"
QUERIES = {
    "twenty_5mb_rows": "SELECT g, repeat('x', 5000000) FROM generate_series(1, 20) g",
    "thousand_90kb_rows": "SELECT g, repeat('x', 90000) FROM generate_series(1, 1000) g",
}


def measure(code: Path, username: str, repeat: int) -> dict[str, object]:
    figures: dict[str, object] = {}
    with api_process(code) as (url, pid), signed_in(url, username) as client:
        client.post("/admin/query", data={"sql": "SELECT 1"}).raise_for_status()
        for (name, sql), page in product(QUERIES.items(), ("/admin/query", "/admin/query/csv")):
            rises, sizes, times = [], [], []
            for _ in range(repeat):
                before = memory_kb(pid)["VmRSS"]
                reset_peak_memory(pid)
                started = time.perf_counter()
                response = client.post(page, data={"sql": sql})
                times.append(time.perf_counter() - started)
                response.raise_for_status()
                rises.append((memory_kb(pid)["VmHWM"] - before) / 1024)
                sizes.append(len(response.content))
            key = f"{name} {page}"
            figures[key] = {
                "response_mb": round(max(sizes) / 1e6, 2),
                "max_ms": round(max(times) * 1000, 1),
                "peak_rss_rise_mb": round(max(rises), 1),
                "rss_after_mb": round(memory_kb(pid)["VmRSS"] / 1024, 1),
            }
            print(f"  {key:<38} {figures[key]}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    add_code_option(parser)
    args = parser.parse_args()
    with private_database():
        from core.platform.config import get_settings
        from core.platform.migrate import sync_readonly_grants

        sync_readonly_grants(get_settings())
        create_admin("bench-viewer", "viewer")
        results = measure_each(args.code, lambda code: measure(code, "bench-viewer", args.repeat))
    write_results(RESULTS, "admin_query_memory", queries=QUERIES, results=results)


if __name__ == "__main__":
    main()
