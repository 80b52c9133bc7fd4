"""Metrics at 10,000 metrics: the sampler's and the alert agent's minute, series and ranking
p99 at 10,000 metrics x 24 h, and the latency from a judged spike to its webhook.

Starts a private PostgreSQL, Apache Kafka, Alertmanager (group wait 1 s, group interval
2 s) and the webhook receiver (the same supervisor and declarations as ``stride up``) in a
temporary folder on free ports, creates ``--metrics`` metrics and ``--hours`` of minute
samples for each (generated in PostgreSQL, per day partition and 1,000 metrics, on two
connections: :func:`load_samples`, ~3 min for 14.4 M rows), rolls up every hour as the
sampler and the hourly job keep them, then times, over one connection each, the domain
functions the services and the API call:

* sampler: storing and publishing one minute of every metric (``Sampler.store_and_publish``:
  the insert, the read-back, the Kafka publish with acks from all replicas);
* alert agent: judging that minute (``apply_samples``: the windowed aggregate, the states);
* ``reads.series_json`` (24 h of one random metric) and ``reads.ranking`` (every metric, 24 h);
* ``GET /v1/metrics/ranking`` through a real API (uvicorn, one worker, a bearer token), each
  request a cache miss (its own ``limit``), and the API's CPU per request;
* spike to webhook: ``apply_samples`` of a spike until the receiver recorded the webhook;
* and end to end: the worker (``stride up worker``) started, a spike written by the sampler
  (PostgreSQL, then ``metrics.samples.v1``) until the receiver recorded its webhook (the
  receiver's ``received_at``): Kafka, the worker's alert agent and Alertmanager included.

Prints the figures and writes ``bench/results/metrics.json``. ``--series-only`` starts
PostgreSQL alone (without WAL archiving), loads the samples, times the series read
in-process, prints the plan of one (``EXPLAIN ANALYZE``), then times ``GET
/v1/metrics/series`` through a real API (uvicorn, one worker, HTTP, a bearer token) with a
``GET /health`` after each read, the machine's floor in the same run, then one metric read
again and again (a cache hit) and revalidated (``If-None-Match``: a 304); ``--compare-with
CHECKOUT`` serves that checkout's API beside it on the same database, its reads interleaved
(the same metrics); results in ``bench/results/metrics_series.json``. ``--vacuum`` vacuums
the samples first (index-only reads at once; autovacuum does it in time).
``--webhook-only`` times only the end-to-end spikes (10) and writes
``bench/results/metrics_webhook.json``.

    .venv/bin/python -m bench.metrics [--metrics 10000] [--hours 24] [--series 300] [--rankings 20]
    .venv/bin/python -m bench.metrics --series-only --vacuum --series 500 --compare-with /work/main
    .venv/bin/python -m bench.metrics --webhook-only --metrics 200 --hours 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
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
        "--compare-with",
        metavar="CHECKOUT",
        help="with --series-only: serve this checkout's API too (e.g. the main branch) and "
        "interleave its series reads with this one's",
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
    if args.series_only:
        # No WAL archiving in this throw-away cluster: the reads write no WAL, and the
        # stack's archive_command (a postgres -c option, not reloadable) would run pgBackRest
        # to compress each 16 MB segment of the load, ~200 of them, beside it on 2 cores.
        import cli.backup

        cli.backup.pgbackrest_binary = lambda: None
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


def time_series(
    engine: object, keys: list[str], end: datetime, args: argparse.Namespace
) -> tuple[list[float], list[float]]:
    """Milliseconds and CPU milliseconds of ``reads.series_json`` (what the API runs: 24 h
    before ``end`` of a random metric, the JSON from PostgreSQL), one per read."""
    from core.metrics import reads
    from core.metrics.catalog import metric_by_key

    series_ms, cpu_ms = [], []
    with engine.connect() as conn:  # type: ignore[attr-defined]
        for _ in range(args.series):
            entry = metric_by_key(conn, random.choice(keys))
            assert entry is not None
            t, cpu = time.perf_counter(), time.process_time()
            points = reads.series_json(conn, entry, end)
            series_ms.append((time.perf_counter() - t) * 1000)
            cpu_ms.append((time.process_time() - cpu) * 1000)
        assert len(json.loads(points)) >= args.hours * 60
    return series_ms, cpu_ms


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_api(checkout: Path, port: int) -> object:
    """uvicorn serving ``checkout``'s ``api.main:app`` on 127.0.0.1:``port`` (one worker,
    as ``stride up api`` by default), against this stack's database; ready when /health
    answers."""
    import subprocess

    import httpx

    env = {**os.environ, "PYTHONPATH": str(checkout)}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1"),
            *("--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"),
        ],
        cwd=checkout,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the API of {checkout} did not answer /health")
        time.sleep(0.1)  # waiting for uvicorn's readiness, bounded by the deadline


class LastByteResponse:
    """What :class:`LastByteClient` read: status, headers (lower-case names), body."""

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code, self.headers, self.content = status_code, headers, content

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> object:
        return json.loads(self.content)


class LastByteClient:
    """GET over one keep-alive HTTP/1.1 connection (``TCP_NODELAY``), reading the answer as
    fast as the socket gives it, as nginx in front of the API does: the time measured is to
    the body's last byte, with no client library's work in it. httpx, used until
    2026-12-02, spent ~1.4 ms of the bench's CPU per 155 kB answer (~0.7 ms per request
    without a body) and read 64 KiB at a time, so the server's write waited for it: a cache
    hit measured 6.6-8.6 ms p50 through httpx and 0.4-1.0 ms this way, the API's CPU per hit
    1.1-1.5 ms against 0.4-0.6 ms (same API, same run, load average 13.5; docs/metrics.md,
    "Series miss, round 4"). Not a general client: answers must carry Content-Length (the
    API's do) or be a 304."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        import socket

        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.headers = headers
        self.buffer = b""

    def get(
        self, path: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> LastByteResponse:
        from urllib.parse import urlencode

        target = f"{path}?{urlencode(params)}" if params else path
        lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{k}: {v}" for k, v in {**self.headers, **(headers or {})}.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buffer:
            self._recv()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *fields = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        found = {k.strip().lower(): v.strip() for k, v in (f.split(":", 1) for f in fields)}
        length = 0 if status == 304 else int(found["content-length"])
        while len(self.buffer) < length:
            self._recv()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return LastByteResponse(status, found, body)

    def _recv(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the API closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def api_stack(pid: int) -> str:
    """The event loop and HTTP parser a running uvicorn loaded (``/proc/PID/maps``): uvicorn
    picks uvloop and httptools when they are installed (``--loop auto --http auto``, as
    ``stride up`` runs it), the pure-Python asyncio and h11 otherwise."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    loop = "uvloop" if "/uvloop/" in maps else "asyncio"
    http = "httptools" if "/httptools/" in maps else "h11"
    return f"{loop}+{http}"


def time_http(
    keys: list[str], end: datetime, args: argparse.Namespace
) -> dict[str, dict[str, object]]:
    """Through a real API (uvicorn, one worker, HTTP on loopback, a bearer token): GET
    /v1/metrics/series of a random metric (each metric once: no cache hit), and, in the
    same loop, GET /health, the machine's own floor; each timed to the body's last byte
    (:class:`LastByteClient`; checking the answer is not timed). With ``--compare-with CHECKOUT``
    that checkout's API serves beside this one, its reads interleaved with these."""
    import uuid

    from cli.stack import free_port
    from core.identity.app_users import create_app_user
    from core.platform.db import session_scope

    with session_scope() as session:
        token = create_app_user(session, f"bench-{uuid.uuid4().hex[:8]}").token
    headers = {"Authorization": f"Bearer {token}"}
    here = Path(__file__).resolve().parents[1]
    apis = {"api": here}
    if args.compare_with:
        apis["api_compared"] = Path(args.compare_with).resolve()
    ports = {name: free_port() for name in apis}
    processes = {name: start_api(checkout, ports[name]) for name, checkout in apis.items()}
    timings: dict[str, list[float]] = {name: [] for name in apis} | {"health": []}
    try:
        clients = {name: LastByteClient(port, headers) for name, port in ports.items()}
        stacks = {name: api_stack(p.pid) for name, p in processes.items()}  # type: ignore[attr-defined]
        print(f"the APIs run on {stacks}", flush=True)
        picked = random.sample(keys, min(len(keys), args.series))
        warm = picked[:20]  # a few reads first: connections open, statements prepared
        cpu = {name: 0.0 for name in apis}
        for index, key in enumerate(warm + picked):
            if index == len(warm):
                cpu = {name: _cpu_s(p.pid) for name, p in processes.items()}  # type: ignore[attr-defined]
                pids = {name: p.pid for name, p in processes.items()}  # type: ignore[attr-defined]
                print(f"timing the APIs' series reads: {pids}", flush=True)  # (for py-spy)
            for name, client in clients.items():
                t = time.perf_counter()
                response = client.get("/v1/metrics/series", params={"metric": key})
                elapsed = (time.perf_counter() - t) * 1000
                assert response.status_code == 200, response.text
                if index >= len(warm):
                    timings[name].append(elapsed)
            t = time.perf_counter()
            assert clients["api"].get("/health").status_code == 200
            if index >= len(warm):
                timings["health"].append((time.perf_counter() - t) * 1000)
        # The API's series ends at its own current minute, the samples at the load's `end`.
        body = response.json()
        shown = (end - datetime.fromisoformat(body["start"])) // timedelta(minutes=1)
        assert len(body["points"]) == shown, (len(body["points"]), shown)
        cpu_per_read = {
            name: round((_cpu_s(p.pid) - cpu[name]) / len(picked) * 1000, 2)  # type: ignore[attr-defined]
            for name, p in processes.items()
        }
        # Many viewers of one metric: this API's cache hit (the bytes as cached) and a
        # viewer revalidating the copy it holds (If-None-Match: a 304 without a body). A
        # minute turning meanwhile makes one of them a miss.
        client, key = clients["api"], picked[0]
        tag = client.get("/v1/metrics/series", params={"metric": key}).headers["etag"]
        for name, extra in (("api_cache_hit", {}), ("api_304", {"If-None-Match": tag})):
            timings[name] = []
            for _ in range(args.series):
                t = time.perf_counter()
                response = client.get("/v1/metrics/series", params={"metric": key}, headers=extra)
                timings[name].append((time.perf_counter() - t) * 1000)
                assert response.status_code in (200, 304), response.text
    finally:
        for client in locals().get("clients", {}).values():
            client.close()
        for process in processes.values():
            process.terminate()  # type: ignore[attr-defined]
            process.wait(timeout=30)  # type: ignore[attr-defined]
    out: dict[str, dict[str, object]] = {
        name: _percentiles(values) | {"reads": len(values)} for name, values in timings.items()
    }
    for name, value in cpu_per_read.items():
        out[name]["api_cpu_ms_per_read_incl_health"] = value
        out[name]["loop_http"] = stacks[name]
    return out


def time_ranking_http(args: argparse.Namespace) -> dict[str, float]:
    """GET /v1/metrics/ranking through a real API (as :func:`time_http`), each request a
    cache miss (its own ``limit``), by cv and stddev in turn; the API's CPU per request."""
    import uuid

    import httpx

    from cli.stack import free_port
    from core.identity.app_users import create_app_user
    from core.platform.db import session_scope

    with session_scope() as session:
        token = create_app_user(session, f"bench-{uuid.uuid4().hex[:8]}").token
    port = free_port()
    process = start_api(Path(__file__).resolve().parents[1], port)
    timings: list[float] = []
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ) as client:
            for index in range(args.rankings + 2):  # the first two: warm-up
                if index == 2:
                    cpu = _cpu_s(process.pid)  # type: ignore[attr-defined]
                t = time.perf_counter()
                response = client.get(
                    "/v1/metrics/ranking",
                    params={"by": "cv" if index % 2 else "stddev", "limit": 50 + index},
                )
                elapsed = (time.perf_counter() - t) * 1000
                assert response.status_code == 200, response.text
                assert len(response.json()["metrics"]) == min(50 + index, args.metrics)
                if index >= 2:
                    timings.append(elapsed)
            cpu_ms = (_cpu_s(process.pid) - cpu) / args.rankings * 1000  # type: ignore[attr-defined]
    finally:
        process.terminate()  # type: ignore[attr-defined]
        process.wait(timeout=30)  # type: ignore[attr-defined]
    return {
        "p50": round(pct(timings, 0.5), 1),
        "p99": round(pct(timings, 0.99), 1),
        "requests": len(timings),
        "api_cpu_ms_per_request": round(cpu_ms, 2),
    }


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


LOAD_CHUNK_METRICS = 1_000


def load_samples(engine: object, metrics: int, start: datetime, end: datetime) -> None:
    """``metrics`` bench metrics and a sample of each for every minute of ``[start, end)``,
    generated in PostgreSQL: one ``INSERT ... SELECT FROM generate_series`` per day partition
    and 1,000 metrics (metric, then minute, within each), two at a time on their own
    connections (a core each), commits not waiting for the WAL flush. The same rows (the same
    value formula) as the single statement this replaces, which took ~11 min at a load
    average of 12; this takes ~3 min at 16-36."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import text

    from core.metrics import partitions

    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(
            text(
                "INSERT INTO metrics (key, kind, description, unit, source)"
                " SELECT 'bench.metric/' || i, 'bench', 'bench metric ' || i, 'things', 'bench'"
                " FROM generate_series(1, :n) AS i"
            ),
            {"n": metrics},
        )
        ids = conn.execute(text("SELECT min(id), max(id) FROM metrics WHERE kind = 'bench'")).one()
        days = {(start + timedelta(days=d)).date() for d in range((end - start).days + 2)}
        partitions.ensure_day_partitions(conn, days)
    chunks = []
    for day in sorted(days):
        low = max(start, datetime(day.year, day.month, day.day, tzinfo=UTC))
        high = min(end, datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1))
        for first in range(ids[0], ids[1] + 1, LOAD_CHUNK_METRICS):
            if low < high:
                chunks.append((first, min(ids[1], first + LOAD_CHUNK_METRICS - 1), low, high))

    def insert(chunk: tuple[int, int, datetime, datetime]) -> None:
        first, last, low, high = chunk
        with engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            # Each metric its own level (1..10,000) and noise: the ranking has work to do.
            conn.execute(
                text(
                    "INSERT INTO metric_samples (metric_id, minute, value)"
                    " SELECT m.id, g.minute, (m.id % 1000 + 1) * (1 + (m.id % 7) * 0.05 * random())"
                    " FROM metrics m CROSS JOIN generate_series(CAST(:low AS timestamptz),"
                    " CAST(:high AS timestamptz) - interval '1 minute', interval '1 minute')"
                    " AS g(minute) WHERE m.id BETWEEN :first AND :last AND m.kind = 'bench'"
                    " ORDER BY m.id, g.minute"
                ),
                {"low": low, "high": high, "first": first, "last": last},
            )

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(insert, chunks))


def rollup_hours(engine: object, now: datetime, hours: int) -> None:
    """Every hour of the load, the current one too, by the product's own job
    (``partitions.rollup_hour``), two hours at a time."""
    from concurrent.futures import ThreadPoolExecutor

    from core.metrics import partitions

    def one(hour: int) -> None:
        with engine.begin() as conn:  # type: ignore[attr-defined]
            partitions.rollup_hour(conn, now.replace(minute=0) - timedelta(hours=hour))

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, range(hours + 1)))


def run(settings: object, args: argparse.Namespace, stack: object) -> dict:
    import httpx
    from sqlalchemy import text

    from core.metrics import reads
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
    load_samples(engine, args.metrics, start, now)
    load_s = time.perf_counter() - t
    print(f"loaded {args.metrics * args.hours * 60:,} samples in {load_s:.1f} s", flush=True)
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
        # The load and the vacuum left ~1 GB of dirty pages: written out now, not by the
        # checkpointer while the reads are timed (superuser: CHECKPOINT).
        import psycopg

        with psycopg.connect(settings.superuser_dsn, autocommit=True) as su:  # type: ignore[attr-defined]
            su.execute("CHECKPOINT")
        keys = [f"bench.metric/{i}" for i in range(1, args.metrics + 1)]
        series_ms, cpu_ms = time_series(engine, keys, now, args)  # the loaded 24 h
        with engine.connect() as conn:
            entry = metric_by_key(conn, random.choice(keys))
            assert entry is not None
            statement, params = reads.series_query(entry, now)
            driver = conn.connection.driver_connection
            with driver.cursor() as cursor:  # type: ignore[union-attr]
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, params)
                plan = [row[0] for row in cursor.fetchall()]
            print("\n".join(plan))
        print(f"reads.series_json in-process: {_percentiles(series_ms)}", flush=True)
        http = time_http(keys, now, args)
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
            "series_24h_cpu_ms": _percentiles(cpu_ms),
            "postgresql_execution": next(line for line in plan if "Execution Time" in line),
            "http_ms": http,
            "compared_with": args.compare_with,
        }
    t = time.perf_counter()
    # Every hour, the current one too: the sampler keeps the current hour's rollup current
    # as it inserts (these samples were loaded in bulk instead).
    rollup_hours(engine, now, args.hours)
    with engine.begin() as conn:
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
    series_ms, _ = time_series(engine, keys, now + timedelta(minutes=1), args)
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
    ranking_http = time_ranking_http(args)
    print(f"ranking through the API: {ranking_http}", flush=True)

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
        "ranking_24h_http_ms": ranking_http,
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
