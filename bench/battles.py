"""Battles end to end: ``POST /v1/battles`` through the front door -> ``battles.requests.v1``
-> the battle engine agent -> PostgreSQL (result, ratings, rating history).

Starts a private stack (PostgreSQL, Apache Kafka, the API behind nginx, the Faust worker
with its ``battles`` role processes running the engine agent, the matcher service) on free
loopback ports and measures, in one run on the same machine:

1. throughput: duels of random players (``--players``) posted ``--per-request`` at a time
   to ``POST /v1/battles/batch`` (1: one per request to ``POST /v1/battles``) by ``wrk``
   (``bench/battles.lua``) for ``--seconds`` with ``--concurrency`` connections, spread
   over ``--games`` game keys (the front door allows a key 2,000 writes/s, burst 4,000:
   one key would measure the quota) chosen to spread evenly over the partitions
   (:func:`balanced_game_ids`), from the first POST until every accepted battle is
   resolved in PostgreSQL (battles/s), the rate at which the API accepted them, and the CPU
   microseconds per battle of each component of the stack (``bench/cpu.py``: the API,
   nginx, Kafka, PostgreSQL, the battle engine processes, the scoring processes that score
   the match results...) from the first POST until the last battle is resolved;
2. ratings: rating updates per CPU second of ``core.battles.ratings.rate`` against
   openskill's own ``PlackettLuce.rate`` on the same duels, interleaved, in this process;
3. latency at a steady ``--rate`` battles/s for ``--latency-seconds`` (a minimal keep-alive
   client, :class:`RawHttp`), as a game server would send them: batches of
   ``--latency-per-request`` duels at a steady pace (10: one every 20 ms at 500/s) to
   ``POST /v1/battles/batch``; per battle, from just before its batch's POST to the moment a poller
   (every 20 ms) sees it resolved; p50/p99/max;
4. matchmaking at a steady ``--ticket-rate`` tickets/s for ``--latency-seconds`` (new
   players, all of the initial rating, so every pair fits the window at once): from just
   before a ticket's POST to the moment the poller sees it matched by the matcher service
   (pass interval ``STRIDE_BATTLES_MATCH_INTERVAL_S``), and to its battle resolved.

The front door's per-IP limit (50 requests/s on these paths) is lifted for the run: one
load generator is one address; the per-key quota stays.

Prints the figures and writes ``bench/results/battles.json``.
Run: ``.venv/bin/python -m bench.battles [--seconds 15] [--rate 500]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "battles.json"
POLL_S = 0.02
PHASES = ("engine", "ratings", "throughput", "latency", "matchmaking")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.battles", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seconds", type=int, default=15, help="length of the wrk run")
    parser.add_argument("--players", type=int, default=40_000, help="players they are drawn from")
    parser.add_argument("--concurrency", type=int, default=64, help="POSTs in flight")
    parser.add_argument(
        "--per-request", type=int, default=100, help="duels per POST /v1/battles/batch (1: single)"
    )
    parser.add_argument("--games", type=int, default=8, help="games (keys) the POSTs rotate over")
    parser.add_argument("--api-workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--rate", type=int, default=500, help="battles/s of the latency run")
    parser.add_argument(
        "--latency-per-request",
        type=int,
        default=10,
        help="duels per batch POST of the latency run (500/s: a batch every 20 ms)",
    )
    parser.add_argument("--ticket-rate", type=int, default=50, help="tickets/s, matchmaking run")
    parser.add_argument("--latency-seconds", type=int, default=20)
    parser.add_argument("--ratings", type=int, default=20_000, help="duels rated in process")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="during the throughput run: py-spy on every battle engine process and"
        " pg_stat_statements in PostgreSQL (PostgreSQL restarted once with the extension)",
    )
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated, of {','.join(PHASES)} (each phase's figures alone)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(latencies_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(latencies_ms, 0.50), 1),
        "p90_ms": round(percentile(latencies_ms, 0.90), 1),
        "p99_ms": round(percentile(latencies_ms, 0.99), 1),
        "max_ms": round(max(latencies_ms), 1),
        "mean_ms": round(statistics.fmean(latencies_ms), 1),
    }


def new_game(name: str, game_id: str | None = None) -> tuple[str, str]:
    from core.identity.game_keys import create_game
    from core.platform.db import session_scope

    game_id = game_id or f"{name}-{uuid.uuid4().hex[:6]}"
    with session_scope() as session:
        key = create_game(session, name, game_id).api_key
    return game_id, key


def duel(rng: random.Random, players: int) -> dict[str, Any]:
    a, b = rng.sample(range(players), 2)
    return {"mode": "duel", "sides": [[f"p{a}"], [f"p{b}"]]}


def count_done(engine: Any, game_ids: list[str]) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM battles WHERE game_id = ANY(:g) AND status <> 'queued'"),
                {"g": game_ids},
            ).scalar_one()
        )


def count_scored(engine: Any, game_ids: list[str]) -> tuple[int, int]:
    """(match results the scoring agent has counted, those the resolved duels emitted)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        scored = conn.execute(
            text("SELECT count(*) FROM processed_events WHERE game_id = ANY(:g)"), {"g": game_ids}
        ).scalar_one()
        resolved = conn.execute(
            text("SELECT count(*) FROM battles WHERE game_id = ANY(:g) AND status = 'resolved'"),
            {"g": game_ids},
        ).scalar_one()
    return int(scored), 2 * int(resolved)


def role_pids(state: Path, role: str) -> list[int]:
    """The stream worker processes of ``role`` of the private stack under ``state``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"streams" in cmdline
            and b"worker" in cmdline
            and f"STRIDE_STREAMS_ROLE={role}".encode() in environ
            and f"STRIDE_STATE_DIR={state}".encode() in environ
        ):
            found.append(int(entry.name))
    return found


class Profile:
    """py-spy (raw stacks, idle frames left out) on every stream worker process of
    ``roles`` (the battle engine's by default) and pg_stat_statements, from :meth:`start`
    to :meth:`stop`; :meth:`stop` returns the summary, per role: the leaf functions taking
    most samples, the functions on most samples' stacks; and the statements taking most
    time per ``unit`` (a battle, an event)."""

    def __init__(
        self,
        state: Path,
        settings: Any,
        roles: tuple[str, ...] = ("battles",),
        unit: str = "battle",
    ) -> None:
        self.state, self.settings, self.roles, self.unit = state, settings, roles, unit
        self.spies: list[tuple[str, Path, subprocess.Popen]] = []

    def _pg(self, sql: str) -> list[tuple]:
        import psycopg

        dsn = self.settings.superuser_dsn + " dbname=stride"
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []

    def start(self) -> None:
        self._pg("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        self._pg("SELECT pg_stat_statements_reset()")
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        for role in self.roles:
            for pid in role_pids(self.state, role):
                out = self.state / f"py-spy-{pid}.txt"
                command = [spy, "record", "-p", str(pid), "-f", "raw", "-o", str(out), "-r", "50"]
                spy_process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
                self.spies.append((role, out, spy_process))

    def stop(self, items: int) -> dict[str, Any]:
        by_role: dict[str, dict[str, Any]] = {}
        for role, out, spy in self.spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its samples and exits
            spy.wait(timeout=60)
            found = by_role.setdefault(role, {"leaves": {}, "inclusive": {}, "total": 0})
            leaves, inclusive = found["leaves"], found["inclusive"]
            for line in out.read_text().splitlines() if out.exists() else []:
                stack, _, count = line.rpartition(" ")
                frames = stack.split(";")
                leaves[frames[-1]] = leaves.get(frames[-1], 0) + int(count)
                for frame in set(frames[1:]):  # the first is the process or thread
                    inclusive[frame] = inclusive.get(frame, 0) + int(count)
                found["total"] += int(count)
        rows = self._pg(
            "SELECT calls, total_exec_time, rows, wal_bytes, left(query, 90)"
            " FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12"
        )
        spied: dict[str, Any] = {}
        for role, found in by_role.items():
            total = max(found["total"], 1)
            top = sorted(found["leaves"].items(), key=lambda kv: -kv[1])[:15]
            within = sorted(found["inclusive"].items(), key=lambda kv: -kv[1])[:40]
            spied[role] = {
                "py_spy_samples": found["total"],
                "py_spy_top_leaves_pct": {k: round(100 * v / total, 1) for k, v in top},
                # the functions on the stack of most samples (a function and all it called)
                "py_spy_top_inclusive_pct": {k: round(100 * v / total, 1) for k, v in within},
            }
        statements = [
            {
                "calls": calls,
                f"exec_ms_per_{self.unit}": round(ms / items, 4),
                "rows": rows_,
                f"wal_bytes_per_{self.unit}": round(int(wal) / items),
                "query": query,
            }
            for calls, ms, rows_, wal, query in rows
        ]
        if len(self.roles) == 1:  # the shape of the earlier results files
            return {**spied.get(self.roles[0], {}), "pg_statements": statements}
        return {"py_spy": spied, "pg_statements": statements}


def throughput(
    base: str, engine: Any, args: argparse.Namespace, profile: Profile | None = None
) -> dict[str, Any]:
    """wrk (C, ``bench/battles.lua``) posts duels for ``--seconds`` with ``--concurrency``
    connections; then until every accepted battle is resolved. A Python load generator
    (httpx) spent ~6 ms of CPU per request here and was the bottleneck at ~20/s."""
    from bench import cpu
    from core.platform.config import get_settings

    partitions = get_settings().kafka_topic_partitions
    chosen = balanced_game_ids("battles", args.games, partitions)
    games = [new_game(f"battles{i}", game_id) for i, game_id in enumerate(chosen)]
    game_ids, keys = [g for g, _ in games], [k for _, k in games]
    spread = game_partitions(game_ids, partitions)
    command = [
        "wrk",
        "-t2",
        f"-c{args.concurrency}",
        f"-d{args.seconds}s",
        "-s",
        str(BENCH_DIR / "battles.lua"),
        base,
        "--",
        str(args.players),
        str(args.per_request),
        *keys,
    ]
    if profile:
        profile.start()
    cpu_before = cpu.snapshot()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    http_s = time.perf_counter() - started
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    wrk = json.loads(line.removeprefix("WRK_JSON "))
    accepted = (wrk["requests"] - wrk["not_202"]) * args.per_request
    deadline = time.monotonic() + 600
    while (resolved := count_done(engine, game_ids)) < accepted:
        if time.monotonic() > deadline:
            raise SystemExit(f"{resolved} of {accepted} battles resolved within 10 minutes")
        # polling PostgreSQL for the last battle, bounded by the deadline; every 0.25 s, not
        # 0.05: the count was the top statement of PostgreSQL in a --profile run (1.2 ms per
        # battle), competing with the engine it measures (adds at most 0.25 s to the time)
        time.sleep(0.25)
    total_s = time.perf_counter() - started
    cpu_seconds = cpu.spent(cpu_before, cpu.snapshot())
    profiled = profile.stop(accepted) if profile else None
    # Then until the scoring processes counted every match result, so that the latency run
    # that follows starts on a stack with nothing left to do.
    while (scored := count_scored(engine, game_ids))[0] < scored[1]:
        if time.monotonic() > deadline:
            raise SystemExit(f"{scored[0]} of {scored[1]} match results scored in 10 minutes")
        time.sleep(0.2)  # polling PostgreSQL, bounded by the deadline
    scored_s = time.perf_counter() - started
    return {
        "battles": accepted,
        "per_request": args.per_request,
        "refused_requests": wrk["not_202"],
        "http_accept_per_s": round(accepted / http_s),
        "end_to_end_s": round(total_s, 2),
        "end_to_end_per_s": round(accepted / total_s),
        "match_results_scored_s": round(scored_s, 2),
        "wrk_command": shlex.join([*command[: -len(keys)], "KEY..."]),
        "games_per_partition": spread,
        # The scoring processes may still be scoring the match results here: their CPU per
        # battle is what they spent until the last battle was resolved.
        "cpu_us_per_battle": cpu.per_event_us(cpu_seconds, accepted),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        **({"profile": profiled} if profiled else {}),
    }


def balanced_game_ids(name: str, games: int, partitions: int) -> list[str]:
    """``games`` random game ids spread as evenly as they can be over the partitions of
    ``battles.requests.v1``. Battles are keyed by game, so a partition (one engine process)
    owns each game: 8 random ids on 4 partitions put 4 or more on one partition in 45 % of
    runs (exact count over the 4^8 placements), and such a run measures one engine process
    more than the stack (a quiet run with 5 of 8 on one partition: 1,148 battles/s). A platform with
    many games spreads them evenly; a bench with 8 keys (the per-key quota) must choose."""
    per_partition = -(-games // partitions)  # ceiling
    counts = [0] * partitions
    chosen: list[str] = []
    while len(chosen) < games:
        game_id = f"{name}-{uuid.uuid4().hex[:6]}"
        partition = game_partitions([game_id], partitions).index(1)
        if counts[partition] < per_partition:
            counts[partition] += 1
            chosen.append(game_id)
    return chosen


def game_partitions(game_ids: list[str], partitions: int) -> list[int]:
    """How many of the games' battles share each partition of ``battles.requests.v1`` (keyed
    by game: a partition, so one engine process, owns a game)."""
    from core.battles.contracts import BattleRequest
    from core.platform.kafka_batches import partition_for

    counts = [0] * partitions
    for game_id in game_ids:
        key = BattleRequest.model_construct(game_id=game_id).record_key()
        counts[partition_for(key, tuple(range(partitions)))] += 1
    return counts


def engine_speed(engine: Any, batches: int, size: int, players: int) -> dict[str, Any]:
    """The engine agent's batch alone (``core.battles.store.resolve_batch``), in this
    process: duels of random players in batches of ``size``, queued first as the API queues
    them (not timed); battles per CPU second of this process (PostgreSQL's own CPU is not
    counted) and per wall second."""
    from core.battles.contracts import BattleRequest
    from core.battles.store import queue_battles, resolve_batch
    from core.platform.db import session_scope

    rng = random.Random(5)
    now = datetime.now(UTC)
    game_id = f"engine-{uuid.uuid4().hex[:6]}"

    def batch() -> list[BattleRequest]:
        return [
            BattleRequest(
                battle_id=uuid.uuid4(), game_id=game_id, requested_at=now, **duel(rng, players)
            )
            for _ in range(size)
        ]

    for warm in [batch() for _ in range(3)]:
        resolve_batch(engine, warm, now)
    work = [batch() for _ in range(batches)]
    for requests in work:
        with session_scope() as session:
            queue_battles(session, [(r, None) for r in requests])
    cpu, wall = time.process_time(), time.perf_counter()
    for requests in work:
        resolve_batch(engine, requests, now)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    replay_cpu = time.process_time()
    for requests in work[:5]:
        resolve_batch(engine, requests, now)  # duplicates: nothing is re-rated
    replay_cpu = time.process_time() - replay_cpu
    count = batches * size
    return {
        "battles": count,
        "batch": size,
        "per_cpu_s": round(count / cpu),
        "per_wall_s": round(count / wall),
        "replayed_per_cpu_s": round(5 * size / replay_cpu),
    }


def rating_speed(count: int) -> dict[str, Any]:
    """The same duels rated through our wrapper and through openskill itself, interleaved
    in blocks of 500 (a loaded machine slows one more than the other otherwise)."""
    from openskill.models import PlackettLuce

    from core.battles import ratings

    model = PlackettLuce()
    first = ratings.initial()
    ours_s = theirs_s = 0.0
    for block in range(0, count, 500):
        started = time.process_time()
        for i in range(block, min(count, block + 500)):
            ratings.rate([[first], [first]], [1 + i % 2, 2 - i % 2])
        ours_s += time.process_time() - started
        started = time.process_time()
        for i in range(block, min(count, block + 500)):
            a = model.rating(mu=first.mu, sigma=first.sigma)
            b = model.rating(mu=first.mu, sigma=first.sigma)
            model.rate([[a], [b]], ranks=[1 + i % 2, 2 - i % 2])
        theirs_s += time.process_time() - started
    return {
        "duels": count,
        "stride_per_cpu_s": round(count / ours_s),
        "openskill_per_cpu_s": round(count / theirs_s),
        "ratio": round(theirs_s / ours_s, 2),
    }


class Poller:
    """Every ``POLL_S``, the rows a query returns: (id, when first seen)."""

    def __init__(self, engine: Any, sql: str, params: dict[str, Any]) -> None:
        from sqlalchemy import text

        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._query, self._params, self._engine = text(sql), params, engine
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._engine.connect() as conn:
                rows = conn.execute(self._query, self._params).scalars().all()
            now = time.perf_counter()
            for row in rows:
                self.seen.setdefault(str(row), now)
            self._stop.wait(POLL_S)  # the poll interval

    def wait_for(self, ids: set[str], timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while not ids <= self.seen.keys() and time.monotonic() < deadline:
            time.sleep(0.05)  # bounded by the deadline

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class RawHttp:
    """A minimal HTTP/1.1 keep-alive client over a pool of connections (requests built as
    bytes, responses read by Content-Length): ~0.1 ms of CPU a request, where httpx spent
    ~6 ms here and could not keep a pace of 500/s on the loaded machine."""

    def __init__(self, base: str, size: int) -> None:
        url = urlsplit(base)
        self.host, self.port, self.size = url.hostname or "127.0.0.1", url.port or 80, size
        self.pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )

    async def open(self) -> None:
        for _ in range(self.size):
            self.pool.put_nowait(await asyncio.open_connection(self.host, self.port))

    async def post(self, path: str, key: str, body: bytes) -> tuple[int, bytes]:
        reader, writer = await self.pool.get()
        try:
            writer.write(
                b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                b"X-Api-Key: %s\r\nContent-Length: %d\r\n\r\n%s"
                % (path.encode(), self.host.encode(), key.encode(), len(body), body)
            )
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            return status, await reader.readexactly(length)
        finally:
            self.pool.put_nowait((reader, writer))

    async def close(self) -> None:
        while not self.pool.empty():
            _, writer = self.pool.get_nowait()
            writer.close()


async def paced(
    base: str, rate: int, seconds: int, send: Callable[[RawHttp, int], Any]
) -> tuple[dict[str, float], float]:
    """``rate`` calls of ``send(http, n)`` a second for ``seconds``, each at its own instant
    (concurrent when the API is slower than the pace): {id it returns (or each of the ids it
    returns): when it started}."""
    sent: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    http = RawHttp(base, 128)
    await http.open()

    async def one(n: int) -> None:
        started = time.perf_counter()
        got = await send(http, n)
        for sent_id in [got] if isinstance(got, str) else got:
            sent[sent_id] = started

    tasks = []
    start = loop.time()
    for n in range(rate * seconds):
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)  # the pace of the load generator
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    await http.close()
    return sent, elapsed


def stage_seconds(settings: Any, agent: str = "battle_engine") -> dict[str, float]:
    """The stream workers' ``stride_stream_stage_seconds`` of ``agent`` (summed over the
    records, per stage) and its valid messages, scraped from their /metrics."""
    import urllib.request

    url = f"http://{settings.metrics_host}:{settings.streams_metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if f'agent="{agent}"' not in line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        if name.startswith("stride_stream_stage_seconds_total"):
            found[name.split('stage="')[1].split('"')[0]] = float(value)
        elif name.startswith("stride_stream_messages_total") and 'outcome="valid"' in name:
            found["messages"] = float(value)
    return found


def stages_ms(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Mean milliseconds a battle spent in each stage of the engine agent between two
    scrapes (:func:`stage_seconds`)."""
    count = after.get("messages", 0) - before.get("messages", 0)
    return {
        stage: round(1000 * (seconds - before.get(stage, 0.0)) / max(count, 1), 1)
        for stage, seconds in after.items()
        if stage != "messages"
    } | {"battles": count}


def latency(
    base: str, engine: Any, args: argparse.Namespace, profile: Profile | None = None
) -> dict[str, Any]:
    from bench import cpu
    from core.platform.config import get_settings

    settings = get_settings()
    game_id, key = new_game("latency")
    rng = random.Random(11)
    poller = Poller(
        engine,
        "SELECT battle_id FROM battles WHERE game_id = :g AND status <> 'queued'",
        {"g": game_id},
    )

    per_request = args.latency_per_request

    async def send(http: RawHttp, _n: int) -> list[str]:
        battles = [duel(rng, args.players) for _ in range(per_request)]
        status, body = await http.post(
            "/v1/battles/batch", key, json.dumps({"battles": battles}).encode()
        )
        if status != 202:
            raise SystemExit(f"POST failed: {status} {body[:300]!r}")
        return [str(item["battle_id"]) for item in json.loads(body)["battles"]]

    requests_per_s = max(1, args.rate // per_request)
    if profile:
        profile.start()
    stages_before, cpu_before = stage_seconds(settings), cpu.snapshot()
    sent, elapsed = asyncio.run(paced(base, requests_per_s, args.latency_seconds, send))
    poller.wait_for(set(sent))
    cpu_seconds = cpu.spent(cpu_before, cpu.snapshot())
    stages = stages_ms(stages_before, stage_seconds(settings))
    poller.stop()
    profiled = profile.stop(len(sent)) if profile else None
    latencies = [(poller.seen[b] - t) * 1000 for b, t in sent.items() if b in poller.seen]
    return {
        "battles": len(sent),
        "per_request": per_request,
        "rate_per_s": round(len(sent) / elapsed),
        "seen": len(latencies),
        "partition": game_partitions([game_id], settings.kafka_topic_partitions).index(1),
        **summary(latencies),
        # the mean time a battle spent in each stage of the engine agent (streams/pipeline.py)
        "engine_stages_ms": stages,
        # from the first POST until the poller saw the last battle resolved (the poller's own
        # queries count for PostgreSQL)
        "cpu_us_per_battle": cpu.per_event_us(cpu_seconds, len(sent)),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        **({"profile": profiled} if profiled else {}),
    }


def matchmaking(base: str, engine: Any, args: argparse.Namespace) -> dict[str, Any]:
    game_id, key = new_game("matching")
    matched = Poller(
        engine,
        "SELECT ticket_id FROM match_tickets WHERE game_id = :g AND status = 'matched'",
        {"g": game_id},
    )
    resolved = Poller(
        engine,
        "SELECT t.ticket_id FROM match_tickets t JOIN battles b ON b.battle_id = t.battle_id"
        " WHERE t.game_id = :g AND b.status <> 'queued'",
        {"g": game_id},
    )

    async def send(http: RawHttp, n: int) -> str:
        ticket = json.dumps({"player_id": f"m{n}", "mode": "duel"}).encode()
        status, body = await http.post("/v1/battles/tickets", key, ticket)
        if status != 201:
            raise SystemExit(f"ticket failed: {status} {body[:300]!r}")
        return str(json.loads(body)["ticket_id"])

    sent, elapsed = asyncio.run(paced(base, args.ticket_rate, args.latency_seconds, send))
    last = max(sent, key=lambda t: sent[t])
    pending = set(sent) - {last}  # an odd ticket out may wait alone
    matched.wait_for(pending)
    resolved.wait_for(pending)
    matched.stop()
    resolved.stop()
    to_match = [(matched.seen[t] - s) * 1000 for t, s in sent.items() if t in matched.seen]
    to_resolved = [(resolved.seen[t] - s) * 1000 for t, s in sent.items() if t in resolved.seen]
    return {
        "tickets": len(sent),
        "rate_per_s": round(len(sent) / elapsed),
        "matched": len(to_match),
        "ticket_to_matched": summary(to_match),
        "ticket_to_resolved": summary(to_resolved),
    }


def load() -> str:
    """The load average, as ``uptime`` prints it: printed beside every figure."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    phases = set(args.phases.split(","))
    if unknown := phases - set(PHASES):
        raise SystemExit(f"unknown phases: {', '.join(sorted(unknown))}")
    load_at_start = [round(x, 2) for x in os.getloadavg()]  # other work skews the figures
    from cli.services import isolated_stack_env

    state, env = isolated_stack_env("stride-bench-battles-")
    # One load generator is one client address: the front door's per-IP limit (50 requests/s
    # on this path) is lifted, as for bench.get_score; the per-key quota stays.
    os.environ.update(
        {
            **env,
            "STRIDE_API_WORKERS": str(args.api_workers),
            "STRIDE_API_RATE_LIMIT_PER_S": "1000000",
            "STRIDE_API_RATE_LIMIT_BURST": "1000000",
        }
    )

    from cli.services import SERVICES
    from cli.stack import Stack
    from core.platform.config import get_settings
    from core.platform.db import engine_for, reset_engines

    get_settings.cache_clear()
    reset_engines()
    settings = get_settings()
    stack = Stack(settings, SERVICES)
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "args": {k: str(v) for k, v in vars(args).items() if k != "output"},
        "load_average_at_start": load_at_start,
        "streams_processes": settings.streams_processes,
        "battles_processes": settings.battles_processes,
        "battles_batch": [settings.battles_batch_size, settings.battles_batch_within_s],
        "topic_partitions": settings.kafka_topic_partitions,
        "match_interval_s": settings.battles_match_interval_s,
    }
    try:
        print(f"starting a private stack in {state} (api workers: {args.api_workers})")
        if args.profile:  # PostgreSQL with pg_stat_statements loaded (a restart)
            stack.up(["postgres"], report=lambda m: print("  " + m))
            Profile(state, settings)._pg(
                "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
            )
            stack.stop("postgres", report=lambda _m: None)
        stack.up(["proxy", "worker", "matcher"], report=lambda m: print("  " + m))
        engine = engine_for(settings.db_url, pool_size=4)
        base = settings.api_url

        if "engine" in phases:
            print("engine alone: 20 batches of 500 duels...")
            result["engine_alone"] = engine_speed(engine, 20, 500, args.players)
            print(f"  {result['engine_alone']}  (load {load()})")

        if "ratings" in phases:
            print(f"ratings: {args.ratings} duels, ours and openskill's...")
            result["ratings"] = rating_speed(args.ratings)
            print(f"  {result['ratings']}  (load {load()})")

        if "throughput" in phases:
            print(f"throughput: wrk for {args.seconds} s, {args.concurrency} connections...")
            profile = Profile(state, settings) if args.profile else None
            result["throughput"] = throughput(base, engine, args, profile)
            print(f"  {result['throughput']}  (load {load()})")

        if "latency" in phases:
            print(f"latency: {args.rate} battles/s for {args.latency_seconds} s...")
            profile = Profile(state, settings) if args.profile else None
            result["latency_at_rate"] = latency(base, engine, args, profile)
            print(f"  {result['latency_at_rate']}  (load {load()})")

        if "matchmaking" in phases:
            print(f"matchmaking: {args.ticket_rate} tickets/s for {args.latency_seconds} s...")
            result["matchmaking"] = matchmaking(base, engine, args)
            print(f"  {result['matchmaking']}  (load {load()})")
    finally:
        stack.down(report=lambda _m: None)
        reset_engines()
        shutil.rmtree(state, ignore_errors=True)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
