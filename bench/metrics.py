"""Metrics at 10,000 metrics: the sampler's and the alert agent's minute, series and ranking
p99 at 10,000 metrics x 24 h, and the latency from a judged spike to its webhook.

Starts a private PostgreSQL, Apache Kafka, Alertmanager (group wait 1 s, group interval
2 s) and the webhook receiver (the same supervisor and declarations as ``stride up``) in a
temporary folder on free ports, creates ``--metrics`` metrics and ``--hours`` of minute
samples for each (``INSERT ... SELECT`` in PostgreSQL), rolls up every hour as the
sampler and the hourly job keep them, then times, over one connection each, the domain
functions the services and the API call:

* sampler: storing and publishing one minute of every metric (``Sampler.store_and_publish``:
  the insert, the read-back, the Kafka publish with acks from all replicas);
* alert agent: judging that minute (``apply_samples``: the windowed aggregate, the states);
* ``reads.series`` (24 h of one random metric) and ``reads.ranking`` (every metric, 24 h);
* spike to webhook: ``apply_samples`` of a spike until the receiver recorded the webhook;
* and end to end: the worker (``stride up worker``) started, a spike written by the sampler
  (PostgreSQL, then ``metrics.samples.v1``) until the receiver recorded its webhook (the
  receiver's ``received_at``): Kafka, the worker's alert agent and Alertmanager included.

Prints the figures and writes ``bench/results/metrics.json``. ``--series-only`` starts
PostgreSQL alone, loads the samples, times only the series reads, prints the plan of one
(``EXPLAIN ANALYZE``) and writes ``bench/results/metrics_series.json``;
``--vacuum`` vacuums the samples first (index-only reads at once; autovacuum does it in time).
``--webhook-only`` times only the end-to-end spikes (10) and writes
``bench/results/metrics_webhook.json``.

    .venv/bin/python -m bench.metrics [--metrics 10000] [--hours 24] [--series 300] [--rankings 20]
    .venv/bin/python -m bench.metrics --series-only --series 500
    .venv/bin/python -m bench.metrics --webhook-only --metrics 200 --hours 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "metrics.json"
SERIES_RESULTS = RESULTS.with_name("metrics_series.json")
WEBHOOK_RESULTS = RESULTS.with_name("metrics_webhook.json")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, default=10_000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--series", type=int, default=300, help="series reads timed")
    parser.add_argument("--rankings", type=int, default=20, help="ranking reads timed")
    parser.add_argument(
        "--series-only",
        action="store_true",
        help="load the samples and time only the series reads (no sampler, agent, ranking "
        "or webhook; results go to metrics_series.json)",
    )
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="with --series-only: VACUUM first, so that the reads are index-only at once "
        "(migration 0021 made the index; autovacuum sets the visibility map in time)",
    )
    parser.add_argument(
        "--webhook-only",
        action="store_true",
        help="load the samples (use a small --metrics) and time only a spike's way from the "
        "sampler's write through Kafka, the worker's alert agent and Alertmanager to the "
        "webhook (results go to metrics_webhook.json)",
    )
    args = parser.parse_args()

    from cli.services import SERVICES, isolated_stack_env

    state, env = isolated_stack_env("stride-bench-metrics-")
    os.environ.update(env)
    from cli.stack import Stack
    from core.platform.config import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    stack = Stack(settings, SERVICES)
    services = (
        ["postgres"] if args.series_only else ["postgres", "kafka", "webhooks", "alertmanager"]
    )
    try:
        stack.up(services, report=lambda _m: None)
        results = run(settings, args, stack)
    finally:
        stack.down(report=lambda _m: None)
        shutil.rmtree(state, ignore_errors=True)
    results["load_average_at_start"] = results.pop("_load")
    out = SERIES_RESULTS if args.series_only else WEBHOOK_RESULTS if args.webhook_only else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def _percentiles(values: list[float]) -> dict[str, float]:
    return {"p50": round(pct(values, 0.5), 2), "p99": round(pct(values, 0.99), 2)}


def time_series(engine: object, keys: list[str], end: datetime, args: argparse.Namespace) -> list:
    """Milliseconds of ``reads.series`` (24 h before ``end`` of a random metric), one per read."""
    from core.metrics import reads
    from core.metrics.catalog import metric_by_key

    series_ms = []
    with engine.connect() as conn:  # type: ignore[attr-defined]
        for _ in range(args.series):
            entry = metric_by_key(conn, random.choice(keys))
            assert entry is not None
            t = time.perf_counter()
            points = reads.series(conn, entry, end)
            series_ms.append((time.perf_counter() - t) * 1000)
        assert len(points) >= args.hours * 60
    return series_ms


def _notified_at(settings: object, path: str) -> datetime | None:
    """When the webhook receiver recorded its first notification on ``path``, if it has."""
    import httpx

    url = f"{settings.webhook_receiver_url}/notifications"  # type: ignore[attr-defined]
    found = httpx.get(url, params={"path": path}).json()
    return datetime.fromisoformat(found[0]["received_at"]) if found else None


def spikes_end_to_end(
    engine: object, settings: object, stack: object, ids: dict[str, int], now: datetime, count: int
) -> dict:
    """A spike's whole way: the sampler's write (PostgreSQL, then ``metrics.samples.v1``)
    -> the worker's metric alerts agent (a real ``stride up worker``) -> Alertmanager ->
    the webhook receiver. Timed from just before ``store_and_publish`` to the receiver's
    ``received_at`` (the same clock)."""
    from sqlalchemy import text

    from core.metrics.alertmanager import sync_alertmanager_config
    from core.metrics.catalog import metric_by_key
    from core.metrics.sampler import Sampler, kafka_publisher
    from core.metrics.subscriptions import Owner, subscribe

    stack.up(["worker"], report=lambda _m: None)  # type: ignore[attr-defined]
    publish, close = kafka_publisher(settings)  # type: ignore[attr-defined]
    sampler = Sampler(engine, settings, publish)
    keys = list(ids)

    def judged(key: str, minute: datetime) -> bool:
        with engine.connect() as conn:  # type: ignore[attr-defined]
            last = conn.execute(
                text("SELECT last_minute FROM metric_alert_states WHERE metric_id = :i"),
                {"i": ids[key]},
            ).scalar()
        return last is not None and last >= minute

    # Warm-up: the agent owns its partition and has judged an ordinary sample.
    warm = keys[-1]
    sampler.store_and_publish(now, {warm: ids[warm]}, {warm: 1.0})
    deadline = time.monotonic() + 120
    while not judged(warm, now):
        if time.monotonic() > deadline:
            raise RuntimeError("the worker's alert agent judged nothing within 120 s")
        time.sleep(0.1)  # waiting for the worker to join its group, bounded by the deadline
    latencies = []
    for index in range(count):
        key = keys[100 + index]
        with engine.begin() as conn:  # type: ignore[attr-defined]
            entry = metric_by_key(conn, key)
            assert entry is not None
            path = f"/e{index}"
            subscribe(
                conn,
                Owner("user", "bench"),
                entry,
                f"{settings.webhook_receiver_url}{path}",  # type: ignore[attr-defined]
                local=True,
            )
        sync_alertmanager_config(engine, settings)
        started = datetime.now(UTC)
        sampler.store_and_publish(now, {key: ids[key]}, {key: 1e9})
        deadline = time.monotonic() + 60
        while (received := _notified_at(settings, path)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("no webhook within 60 s")
            time.sleep(0.02)  # polling the receiver, bounded by the deadline
        latencies.append((received - started).total_seconds() * 1000)
    close()
    return {
        "spikes": count,
        "p50": round(pct(latencies, 0.5)),
        "max": round(max(latencies)),
        "all_ms": [round(x) for x in latencies],
        "group_wait_s": settings.alertmanager_group_wait_s,  # type: ignore[attr-defined]
        "path": "sampler write -> Kafka -> worker alert agent -> Alertmanager -> webhook",
    }


def run(settings: object, args: argparse.Namespace, stack: object) -> dict:
    import httpx
    from sqlalchemy import text

    from core.metrics import partitions, reads
    from core.metrics.alertmanager import sync_alertmanager_config
    from core.metrics.alerts import apply_samples
    from core.metrics.catalog import metric_by_key
    from core.metrics.contracts import MetricSampleV1
    from core.metrics.sampler import Sampler, kafka_publisher
    from core.metrics.subscriptions import Owner, subscribe
    from core.platform.db import engine_for
    from core.platform.migrate import upgrade_to_head

    load = os.getloadavg()[0]
    upgrade_to_head(settings)
    engine = engine_for(settings.db_url)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(hours=args.hours)
    t = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO metrics (key, kind, description, unit, source)"
                " SELECT 'bench.metric/' || i, 'bench', 'bench metric ' || i, 'things', 'bench'"
                " FROM generate_series(1, :n) AS i"
            ),
            {"n": args.metrics},
        )
        partitions.ensure_day_partitions(
            conn, {(start + timedelta(days=d)).date() for d in range(args.hours // 24 + 2)}
        )
        # Each metric its own level (1..10,000) and noise: the ranking has work to do.
        conn.execute(
            text(
                "INSERT INTO metric_samples (metric_id, minute, value)"
                " SELECT m.id, g.minute, (m.id % 1000 + 1) * (1 + (m.id % 7) * 0.05 * random())"
                " FROM metrics m CROSS JOIN generate_series(CAST(:start AS timestamptz),"
                " CAST(:end AS timestamptz) - interval '1 minute', interval '1 minute')"
                " AS g(minute)"
            ),
            {"start": start, "end": now},
        )
    load_s = time.perf_counter() - t
    rows = args.metrics * args.hours * 60
    if args.webhook_only:
        with engine.connect() as conn:
            ids = dict(
                (r.key, r.id)
                for r in conn.execute(text("SELECT key, id FROM metrics WHERE kind = 'bench'"))
            )
        return {
            "_load": round(load, 2),
            "load_average_at_end": round(os.getloadavg()[0], 2),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "metrics": args.metrics,
            "hours": args.hours,
            "spike_to_webhook_end_to_end_ms": spikes_end_to_end(
                engine, settings, stack, ids, now, 10
            ),
        }
    if args.series_only:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE metric_samples"))
        if args.vacuum:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE metric_samples"))
        keys = [f"bench.metric/{i}" for i in range(1, args.metrics + 1)]
        series_ms = time_series(engine, keys, now, args)  # the loaded 24 h
        with engine.connect() as conn:
            entry = metric_by_key(conn, random.choice(keys))
            assert entry is not None
            statement, params = reads.series_query(entry, now)
            plan = conn.execute(
                text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement.text), params
            ).scalars()
            print("\n".join(plan))
        return {
            "_load": round(load, 2),
            "load_average_at_end": round(os.getloadavg()[0], 2),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "metrics": args.metrics,
            "hours": args.hours,
            "sample_rows": rows,
            "load_rows_s": round(load_s, 1),
            "series_reads": len(series_ms),
            "vacuumed": args.vacuum,
            "series_24h_ms": _percentiles(series_ms),
        }
    t = time.perf_counter()
    with engine.begin() as conn:
        # Every hour, the current one too: the sampler keeps the current hour's rollup
        # current as it inserts (these samples were loaded in bulk instead).
        for hour in range(args.hours + 1):
            partitions.rollup_hour(conn, now.replace(minute=0) - timedelta(hours=hour))
        conn.execute(text("ANALYZE metric_samples"))
        conn.execute(text("ANALYZE metric_rollups_hourly"))
    rollup_s = time.perf_counter() - t

    with engine.connect() as conn:
        ids = dict(
            (r.key, r.id)
            for r in conn.execute(text("SELECT key, id FROM metrics WHERE kind = 'bench'"))
        )
    keys = list(ids)

    # The sampler's minute: store and publish every metric's reading of `now`.
    publish, close = kafka_publisher(settings)
    sampler = Sampler(engine, settings, publish)
    readings = {k: float(ids[k] % 1000 + 1) for k in keys}
    t, cpu = time.perf_counter(), time.process_time()
    published = sampler.store_and_publish(now, ids, readings)
    sampler_s, sampler_cpu = time.perf_counter() - t, time.process_time() - cpu
    close()

    # The agent's minute: judge those samples.
    t, cpu = time.perf_counter(), time.process_time()
    outcome = apply_samples(engine, settings, published)
    agent_s, agent_cpu = time.perf_counter() - t, time.process_time() - cpu

    # With the sampler's minute `now`: 24 h and a minute back.
    series_ms = time_series(engine, keys, now + timedelta(minutes=1), args)
    with engine.connect() as conn:
        ranking_ms = []
        for index in range(args.rankings):
            t = time.perf_counter()
            ranked = reads.ranking(
                conn,
                now + timedelta(minutes=1),
                by=reads.RankBy.cv if index % 2 else reads.RankBy.stddev,
            )
            ranking_ms.append((time.perf_counter() - t) * 1000)
        assert len(ranked) == 50

    # Spike to webhook: a subscribed metric, a point far above its hour, until the webhook.
    latencies = []
    for index in range(5):
        key = keys[index]
        with engine.begin() as conn:
            entry = metric_by_key(conn, key)
            assert entry is not None
            subscribe(
                conn,
                Owner("user", "bench"),
                entry,
                f"{settings.webhook_receiver_url}/b{index}",
                local=True,
            )
        sync_alertmanager_config(engine, settings)
        minute = now + timedelta(minutes=1 + index)
        value = 1e9
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO metric_samples (metric_id, minute, value) VALUES (:i, :m, :v)"),
                {"i": ids[key], "m": minute, "v": value},
            )
        spike = MetricSampleV1(
            metric_id=ids[key], metric_key=key, minute=minute, value=value, sampled_at=minute
        )
        t = time.perf_counter()
        apply_samples(engine, settings, [spike])
        deadline = time.monotonic() + 30
        while not httpx.get(
            f"{settings.webhook_receiver_url}/notifications", params={"path": f"/b{index}"}
        ).json():
            if time.monotonic() > deadline:
                raise RuntimeError("no webhook within 30 s")
            time.sleep(0.02)  # polling the receiver, bounded by the deadline
        latencies.append((time.perf_counter() - t) * 1000)

    end_to_end = spikes_end_to_end(engine, settings, stack, ids, now + timedelta(minutes=10), 5)
    samples = len(published)
    return {
        "_load": round(load, 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "metrics": args.metrics,
        "hours": args.hours,
        "sample_rows": rows,
        "load_rows_s": round(load_s, 1),
        "rollup_hours_s": round(rollup_s, 1),
        "sampler_minute_s": round(sampler_s, 3),
        "sampler_samples_per_s": round(samples / sampler_s),
        "sampler_cpu_us_per_sample": round(sampler_cpu / samples * 1e6, 1),
        "agent_minute_s": round(agent_s, 3),
        "agent_samples_per_s": round(samples / agent_s),
        "agent_cpu_us_per_sample": round(agent_cpu / samples * 1e6, 1),
        "agent_judged": outcome.judged,
        "series_24h_ms": _percentiles(series_ms),
        "ranking_24h_ms": {
            "p50": round(pct(ranking_ms, 0.5), 1),
            "p99": round(pct(ranking_ms, 0.99), 1),
        },
        "spike_to_webhook_ms": {
            "p50": round(pct(latencies, 0.5)),
            "max": round(max(latencies)),
            "group_wait_s": settings.alertmanager_group_wait_s,
            "path": "apply_samples (the agent's domain function) -> Alertmanager -> webhook",
        },
        "spike_to_webhook_end_to_end_ms": end_to_end,
        "cpu_note": "process CPU of this Python process only (PostgreSQL and Kafka not counted)",
    }


if __name__ == "__main__":
    main()
