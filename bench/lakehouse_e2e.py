"""Benchmark: 1M wearable samples bronze → silver → gold → warehouse, on a private stack.

Starts PostgreSQL and the Spark Connect server (Apache Spark 4.1 + Delta Lake 4.3 on the
JVM, ``stride up spark``) in a temporary state folder (free ports), appends N generated
samples to bronze (deltalake), materializes the day with the Dagster assets, and prints
samples/s end to end. The first run pays the JVM's class loading and JIT on a fresh server;
the day is then materialized again (``replaceWhere``: the same work on a warm server),
which is what a running stack sees. In the same run it prints the raw PostgreSQL
``COPY FROM STDIN`` rate (psycopg 3, the warehouse loader's path) as the ceiling of the
load step. Figures go to ``bench/results/lakehouse_e2e.json``.

    .venv/bin/python -m bench.lakehouse_e2e [--samples 1000000] [--users 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa

RESULTS = Path(__file__).resolve().parent / "results" / "lakehouse_e2e.json"
DAY = date(2026, 11, 21)
METRICS = [("steps", "count", 40.0), ("heart_rate", "count/min", 70.0), ("sleep", "s", 60.0)]


def bronze_rows(n: int, users: int) -> pa.Table:
    from core.lake.bronze import WEARABLE_SAMPLES_SCHEMA

    start = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
    now = datetime.now(UTC)
    metric = [METRICS[i % 3] for i in range(n)]
    starts = [start + timedelta(seconds=(i // users) % 86_000) for i in range(n)]
    columns = {
        "sample_id": [str(uuid.uuid4()) for _ in range(n)],
        "user_id": [f"user-{i % users}" for i in range(n)],
        "source": ["apple_health"] * n,
        "metric": [m[0] for m in metric],
        "value": [m[2] for m in metric],
        "unit": [m[1] for m in metric],
        "start_at": starts,
        "end_at": [s + timedelta(minutes=1) for s in starts],
        "utc_offset_minutes": [0] * n,
        "device": ["Apple Watch (Watch6,1)"] * n,
        "attributes": ["{}"] * n,
        "date": [DAY] * n,
        "kafka_partition": [0] * n,
        "kafka_offset": list(range(n)),
        "ingested_at": [now] * n,
    }
    return pa.table(columns, schema=WEARABLE_SAMPLES_SCHEMA)


def copy_rate(dsn: str, rows: int) -> float:
    """Rows/s of COPY FROM STDIN into a scratch table shaped like user_daily_health."""
    import psycopg

    data = [(DAY, f"{i:064x}", 1000 + i, 55.5, 420.0, 30, datetime.now(UTC)) for i in range(rows)]
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE copy_ceiling (date DATE, user_key CHAR(64), steps BIGINT, "
            "resting_heart_rate DOUBLE PRECISION, sleep_minutes DOUBLE PRECISION, "
            "sample_count BIGINT, loaded_at TIMESTAMPTZ)"
        )
        started = time.perf_counter()
        with cur.copy("COPY copy_ceiling FROM STDIN") as copy:
            for row in data:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args()

    from cli.services import isolated_stack_env
    from cli.stack import Stack

    state, env = isolated_stack_env("stride-bench-")
    os.environ.update(env)
    from cli.services import SERVICES
    from core.lake.bronze import BRONZE_WEARABLE_SAMPLES, append_bronze
    from core.platform.config import get_settings
    from core.warehouse.load import USER_DAILY_HEALTH, PostgresWarehouse
    from dagster_project.resources import resources_for
    from dagster_project.run import materialize_day
    from spark_jobs.session import stop_sessions

    settings = get_settings()
    stack = Stack(settings, SERVICES)
    try:
        stack.up(["postgres", "spark"], report=lambda _m: None)
        print(f"generating {args.samples} bronze samples for {args.users} users...")
        rows = bronze_rows(args.samples, args.users)
        started = time.perf_counter()
        append_bronze(settings.lake_root, BRONZE_WEARABLE_SAMPLES, rows)
        bronze_s = time.perf_counter() - started

        started = time.perf_counter()
        outcome = materialize_day(DAY, resources_for(settings), log_level="WARNING")
        pipeline_s = time.perf_counter() - started
        assert outcome.success and not outcome.failed_checks, outcome
        started = time.perf_counter()
        warm = materialize_day(DAY, resources_for(settings), log_level="WARNING")
        warm_s = time.perf_counter() - started
        assert warm.success and warm.rows == outcome.rows, warm
        dsn = settings.warehouse_db_url.replace("postgresql+psycopg://", "postgresql://", 1)
        warehouse_rows = PostgresWarehouse(dsn).count_day(USER_DAILY_HEALTH, DAY)
        ceiling = copy_rate(dsn, 1_000_000)
        stop_sessions()
    finally:
        stack.down(report=lambda _m: None)
        shutil.rmtree(state, ignore_errors=True)

    figures = {
        "samples": args.samples,
        "users": args.users,
        "bronze_append_s": round(bronze_s, 2),
        "bronze_append_rows_per_s": round(args.samples / bronze_s),
        "pipeline_s": round(pipeline_s, 2),
        "pipeline_samples_per_s": round(args.samples / pipeline_s),
        "pipeline_warm_s": round(warm_s, 2),
        "pipeline_warm_samples_per_s": round(args.samples / warm_s),
        "silver_rows": outcome.rows.get("silver_wearable_samples"),
        "gold_rows": outcome.rows.get("gold_user_daily_health"),
        "warehouse_rows": warehouse_rows,
        "postgres_copy_rows_per_s": round(ceiling),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "engine": "Apache Spark 4.1.1 + Delta Lake 4.3.1 (Spark Connect, local[2], 2 GB heap)",
        "note": "pipeline = silver + gold (with checks) + warehouse for both domains, one day; "
        "first run on a fresh JVM, warm = the same day again",
    }
    for key, value in figures.items():
        print(f"{key:>26}: {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
