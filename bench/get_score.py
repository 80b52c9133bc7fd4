"""Benchmark of ``POST /v1/get_score`` (PostgreSQL logging) against ``GET /health``.

Starts a private stack (PostgreSQL, Apache Kafka, API on uvicorn behind its nginx front door)
on free loopback ports in a temporary state folder, drives both endpoints of the same app
through nginx with Debian ``wrk`` under the same settings (the front door's per-IP rate limit
is lifted: the load comes from one address; its timeouts and caps apply), checks that every
completed get_score request left its ``score_log`` row, prints the figures and writes them to
``bench/results/get_score.json``.

During the get_score phase it also reads PostgreSQL's WAL statistics (``pg_stat_wal`` with
``track_wal_io_timing`` on): WAL flushes per call (one per group-commit batch) and the mean
time of one flush, the wait every call shares before it may be answered. ``--py-spy FILE``
records the API workers' stacks (wall time, idle included) during that phase, folded.

Run: ``.venv/bin/python -m bench.get_score [--duration 20] [--connections 32] [--threads 2]
[--py-spy FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "get_score.lua"
RESULTS = BENCH_DIR / "results" / "get_score.json"
REPORT_PREFIX = "WRK_JSON "


@dataclass(frozen=True)
class LoadResult:
    """What wrk measured for one endpoint."""

    endpoint: str
    requests: int
    duration_s: float
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    api_cpu_ms_per_request: float
    proxy_cpu_ms_per_request: float
    postgres_cpu_ms_per_request: float
    wrk_command: str


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.get_score", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--duration", type=int, default=20, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=32, help="open HTTP connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--workers", type=int, default=2, help="uvicorn worker processes (STRIDE_API_WORKERS)"
    )
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per endpoint")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument(
        "--py-spy", type=Path, help="record the API's stacks during get_score (folded) here"
    )
    args = parser.parse_args(argv)
    if min(args.duration, args.connections, args.threads, args.workers) < 1:
        parser.error("--duration, --connections, --threads and --workers must be at least 1")
    if args.threads > args.connections:
        parser.error("--threads must not exceed --connections (wrk needs a connection each)")
    return args


def private_stack_env(workers: int) -> tuple[Path, dict[str, str]]:
    """A throw-away state folder and the STRIDE_* variables pointing the stack at it."""
    from cli.services import isolated_stack_env

    state, env = isolated_stack_env("stride-bench-")
    return state, {
        **env,
        "STRIDE_API_WORKERS": str(workers),
        "STRIDE_API_RATE_LIMIT_PER_S": "1000000",  # one load generator, one client IP
    }


def process_tree_cpu_s(root_pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and all its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process exited meanwhile
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        # utime, stime, and the same for children already waited for
        cpu[pid] = sum(int(x) for x in fields[11:15]) / tick
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def run_wrk(
    base_url: str,
    endpoint: str,
    mode: str,
    run_tag: str,
    args: argparse.Namespace,
    seconds: int,
    pids: dict[str, int],
    api_key: str = "",
) -> LoadResult:
    command = [
        "wrk",
        f"--threads={args.threads}",
        f"--connections={args.connections}",
        f"--duration={seconds}s",
        "--timeout=10s",
        f"--script={os.path.relpath(LUA_SCRIPT)}",
        base_url + endpoint,
        "--",
        mode,
        run_tag,
        api_key,
    ]
    cpu_before = {name: process_tree_cpu_s(pid) for name, pid in pids.items()}
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    cpu_used = {name: process_tree_cpu_s(pid) - cpu_before[name] for name, pid in pids.items()}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(REPORT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(lines[-1].removeprefix(REPORT_PREFIX))
    duration = raw["duration_us"] / 1e6

    def ms_per_request(name: str) -> float:
        return round(cpu_used[name] * 1000 / max(raw["requests"], 1), 3)

    return LoadResult(
        endpoint=endpoint,
        requests=raw["requests"],
        duration_s=round(duration, 3),
        requests_per_s=round(raw["requests"] / duration, 1),
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        non_2xx=raw["non_2xx"],
        socket_errors=sum(raw[k] for k in ("errors_connect", "errors_read", "errors_write"))
        + raw["errors_timeout"],
        api_cpu_ms_per_request=ms_per_request("api"),
        proxy_cpu_ms_per_request=ms_per_request("proxy"),
        postgres_cpu_ms_per_request=ms_per_request("postgres"),
        wrk_command=shlex.join(command),
    )


def count_rows(engine: Engine, run_tag: str) -> int:
    """score_log rows whose user id carries ``run_tag`` (the Lua script's prefix)."""
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM score_log WHERE user_id LIKE :prefix"),
            {"prefix": run_tag + "-%"},
        ).scalar_one()


def settled_count(engine: Engine, run_tag: str, timeout: float = 15.0) -> int:
    """The row count once requests still in flight when wrk stopped have been written."""
    deadline = time.monotonic() + timeout
    last, unchanged = count_rows(engine, run_tag), 0
    while unchanged < 3 and time.monotonic() < deadline:
        time.sleep(0.2)  # polling the server's write-back, bounded by the deadline
        current = count_rows(engine, run_tag)
        unchanged = unchanged + 1 if current == last else 0
        last = current
    return last


WAL_STATS = (
    "SELECT wal_records, wal_write, wal_sync, wal_write_time, wal_sync_time FROM pg_stat_wal"
)


def wal_stats(dsn: str) -> dict[str, float]:
    """The cluster's WAL counters (times in ms; they count only with track_wal_io_timing)."""
    import psycopg

    with psycopg.connect(dsn + " dbname=postgres", autocommit=True) as conn:
        row = conn.execute(WAL_STATS).fetchone()
    assert row is not None
    names = ("records", "writes", "syncs", "write_ms", "sync_ms")
    return {name: float(value) for name, value in zip(names, row, strict=True)}


def time_wal_io(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn + " dbname=postgres", autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET track_wal_io_timing = on")
        conn.execute("SELECT pg_reload_conf()")


def round_trips(dsn: str, count: int = 200) -> dict[str, float]:
    """Latency of bare PostgreSQL round trips from this process, sequential: ``SELECT 1``
    and a committed one-row INSERT (one WAL flush each), p50 and p99 in ms. What one
    group-commit batch waits for at least, whatever the API does."""
    import psycopg

    def percentiles(samples: list[float]) -> tuple[float, float]:
        ordered = sorted(samples)
        return (
            round(ordered[len(ordered) // 2] * 1000, 2),
            round(ordered[int(len(ordered) * 0.99)] * 1000, 2),
        )

    with psycopg.connect(dsn + " dbname=postgres", autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_round_trip (x int)")
        select, insert = [], []
        for _ in range(count):
            started = time.perf_counter()
            conn.execute("SELECT 1")
            select.append(time.perf_counter() - started)
            started = time.perf_counter()
            conn.execute("INSERT INTO bench_round_trip VALUES (1)")
            insert.append(time.perf_counter() - started)
        conn.execute("DROP TABLE bench_round_trip")
    (select_p50, select_p99), (insert_p50, insert_p99) = percentiles(select), percentiles(insert)
    return {
        "select_1_p50_ms": select_p50,
        "select_1_p99_ms": select_p99,
        "insert_commit_p50_ms": insert_p50,
        "insert_commit_p99_ms": insert_p99,
    }


API_HISTOGRAMS = (
    # the request entering the app to its response starting (nginx and wrk are not in it)
    'stride_http_request_duration_seconds_{kind}{method="POST",route="/v1/get_score"}',
    # a batch's oldest row queued until its INSERT is sent; the INSERT's round trip
    "stride_score_log_queued_seconds_{kind}",
    "stride_score_log_insert_seconds_{kind}",
)


def api_histograms(metrics_url: str) -> dict[str, tuple[float, float]]:
    """(sum of seconds, count) of each of ``API_HISTOGRAMS``, all API workers summed."""
    import httpx

    lines = httpx.get(metrics_url, timeout=10).text.splitlines()
    totals: dict[str, tuple[float, float]] = {}
    for pattern in API_HISTOGRAMS:
        name = pattern.split("_{kind}")[0]
        values = []
        for kind in ("sum", "count"):
            key = pattern.replace("{kind}", kind)
            values.append(sum(float(ln.rsplit(" ", 1)[1]) for ln in lines if ln.startswith(key)))
        totals[name] = (values[0], values[1])
    return totals


Totals = dict[str, tuple[float, float]]


def mean_ms(before: Totals, after: Totals) -> dict[str, dict[str, float]]:
    """Each histogram's mean (ms) over the phase between the two scrapes, and its count."""
    means = {}
    for name, (total_before, count_before) in before.items():
        total, count = after[name][0] - total_before, after[name][1] - count_before
        means[name] = {"mean_ms": round(total * 1000 / max(count, 1), 2), "count": int(count)}
    return means


def start_py_spy(pid: int, seconds: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy on the API and its workers for ``seconds``, wall time (idle stacks too)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--pid", str(pid), "--subprocesses", "--idle", "--format", "raw"]
    command += [
        "--duration",
        str(seconds),
        "--rate",
        "200",
        "--output",
        str(output),
        "--nonblocking",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def machine_info(workers: int) -> dict[str, object]:
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )

    def version(*cmd: str) -> str:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return (out.stdout or out.stderr).strip().splitlines()[0]

    import uvicorn

    return {
        "cpu": cpu_model,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgres": version("postgres", "--version"),
        "wrk": version("wrk", "--version").split(" Copyright")[0],
        "uvicorn": uvicorn.__version__,
        "uvicorn_workers": workers,
    }


def print_table(score: LoadResult, health: LoadResult) -> None:
    header = ("req/s", "p50 ms", "p90 ms", "p99 ms", "non-2xx", "api CPU", "nginx CPU", "pg CPU")
    print(f"\n{'endpoint':<16}" + "".join(f"{h:>10}" for h in header))
    for r in (score, health):
        print(
            f"{r.endpoint:<16}{r.requests_per_s:>10.0f}{r.p50_ms:>10.2f}{r.p90_ms:>10.2f}"
            f"{r.p99_ms:>10.2f}{r.non_2xx:>10}{r.api_cpu_ms_per_request:>8.3f}ms"
            f"{r.proxy_cpu_ms_per_request:>8.3f}ms"
            f"{r.postgres_cpu_ms_per_request:>8.3f}ms"
        )
    print("(api/nginx/pg CPU: CPU time the API workers, nginx and PostgreSQL spent per request)")
    print(
        f"ratio health/get_score: {health.requests_per_s / score.requests_per_s:.2f}x req/s, "
        f"get_score/health p99: {score.p99_ms / health.p99_ms:.2f}x"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: install the Debian package `wrk`")
    state, env = private_stack_env(args.workers)
    os.environ.update(env)

    from cli.services import SERVICES
    from cli.stack import Stack
    from core.platform.config import get_settings
    from core.platform.db import engine_for, reset_engines

    get_settings.cache_clear()
    reset_engines()
    settings = get_settings()
    stack = Stack(settings, SERVICES)
    run_tag = "bench-" + uuid.uuid4().hex[:8]
    try:
        print(f"starting a private stack in {state} (api workers: {args.workers})")
        stack.up(["proxy"], report=lambda m: print("  " + m))
        engine = engine_for(settings.db_url, pool_size=1)
        from core.identity.game_keys import create_game
        from core.platform.db import session_scope

        with session_scope() as session:  # get_score needs a caller: a game server's key
            key = create_game(session, "Bench", game_id=run_tag).api_key
        base = settings.api_url
        pids = {name: stack.pid(name) for name in ("api", "proxy", "postgres")}
        if None in pids.values():
            raise SystemExit(f"the stack is not running: {pids}")

        if args.warmup:
            print(f"warming up {args.warmup}s per endpoint")
            run_wrk(base, "/v1/get_score", "get_score", run_tag + "w", args, args.warmup, pids, key)
            run_wrk(base, "/health", "health", run_tag, args, args.warmup, pids)

        before = settled_count(engine, run_tag)
        print(f"load: {args.duration}s, {args.connections} connections, {args.threads} threads")
        time_wal_io(settings.superuser_dsn)
        load_before = os.getloadavg()
        wal_before = wal_stats(settings.superuser_dsn)
        metrics_url = f"http://{settings.metrics_host}:{settings.api_metrics_port}/metrics"
        api_before = api_histograms(metrics_url)
        spy = None
        if args.py_spy:
            spy = start_py_spy(pids["api"], max(1, args.duration - 2), args.py_spy)
        score = run_wrk(base, "/v1/get_score", "get_score", run_tag, args, args.duration, pids, key)
        wal_after = wal_stats(settings.superuser_dsn)
        api_after = api_histograms(metrics_url)
        if spy is not None:
            spy.wait(timeout=60)
        rows_added = settled_count(engine, run_tag) - before
        health = run_wrk(base, "/health", "health", run_tag, args, args.duration, pids)
        load_after = os.getloadavg()
        postgres_round_trips = round_trips(settings.superuser_dsn)
    finally:
        stack.down(report=lambda _m: None)
        reset_engines()
        shutil.rmtree(state, ignore_errors=True)

    completed_ok = score.requests - score.non_2xx
    # Requests still in flight when wrk stops are served and logged but not counted by
    # wrk: at most one per connection.
    in_flight = rows_added - completed_ok
    log_ok = score.non_2xx == 0 and score.socket_errors == 0 and 0 <= in_flight <= args.connections
    print_table(score, health)
    wal = {k: wal_after[k] - wal_before[k] for k in wal_before}
    calls = max(score.requests, 1)
    wal_report = {
        "flushes_per_call": round(wal["syncs"] / calls, 4),
        "calls_per_flush": round(calls / max(wal["syncs"], 1), 1),
        "mean_flush_ms": round(wal["sync_ms"] / max(wal["syncs"], 1), 3),
        "flush_ms_per_s": round(wal["sync_ms"] / score.duration_s, 1),
    }
    inside = mean_ms(api_before, api_after)
    print(f"inside the API during get_score (wrk saw p50 {score.p50_ms} ms):")
    for name, figures in inside.items():
        print(f"  {name}: mean {figures['mean_ms']} ms over {figures['count']}")
    print(f"PostgreSQL round trips (sequential, after the load): {postgres_round_trips}")
    print(
        f"WAL during get_score: {wal_report['calls_per_flush']} calls per flush, "
        f"{wal_report['mean_flush_ms']} ms per flush "
        f"({wal_report['flush_ms_per_s']} ms of flushing per second)"
    )
    print(
        f"score_log: {rows_added} rows added for {completed_ok} completed 2xx get_score "
        f"requests ({in_flight} served after wrk stopped counting) -> "
        + ("OK" if log_ok else "MISMATCH")
    )

    result = {
        "benchmark": "get_score",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([".venv/bin/python", "-m", "bench.get_score", *sys.argv[1:]]),
        "settings": {
            "duration_s": args.duration,
            "connections": args.connections,
            "threads": args.threads,
            "warmup_s": args.warmup,
            "api_workers": args.workers,
        },
        "machine": machine_info(args.workers),
        # Other work on the machine skews req/s and latency; CPU per request much less so.
        "load_average_1m": {"before": load_before[0], "after": load_after[0]},
        "get_score": asdict(score),
        "get_score_wal": wal_report,
        "postgres_round_trips": postgres_round_trips,
        "inside_api_during_get_score": inside,
        "health": asdict(health),
        "ratio": {
            "health_over_get_score_rps": round(health.requests_per_s / score.requests_per_s, 2),
            "get_score_over_health_p50": round(score.p50_ms / health.p50_ms, 2),
            "get_score_over_health_p99": round(score.p99_ms / health.p99_ms, 2),
        },
        "score_log_check": {
            "completed_2xx_requests": completed_ok,
            "rows_added": rows_added,
            "served_after_wrk_stopped": in_flight,
            "ok": log_ok,
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0 if log_ok else 1


if __name__ == "__main__":
    sys.exit(main())
