"""Leaderboard at 1 million records: top-100, rank of a player, neighbours, writes.

Starts a private PostgreSQL (the same supervisor and service declaration as ``stride up``)
in a temporary folder on a free port, loads one leaderboard period with COPY, then times
the store functions the API calls, one at a time over one connection:

* ``top``: the first 100, and 100 after a cursor at a random depth;
* ``rank_of`` (rank blocks, the shipped design) for random players;
* the alternative it replaced: ``1 + COUNT(*)`` of better records (index-only scan);
* ``around`` (10 either side); ``submit_scores`` batches of 1,000 into the loaded board;
* if ``redis-server`` is on PATH: ZREVRANK / ZREVRANGE on a sorted set of the same data.

Prints the figures and writes ``bench/results/leaderboard.json``.

    .venv/bin/python -m bench.leaderboard [--records 1000000] [--lookups 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "leaderboard.json"
BOARD = "bench-1m"
GAME = "bench"
BASE = datetime(2026, 11, 16, tzinfo=UTC)


def private_postgres() -> tuple[object, Path]:
    """Start PostgreSQL under a temporary state folder; return (stack, folder)."""
    from cli.services import isolated_stack_env

    state, env = isolated_stack_env("stride-bench-")
    os.environ.update(env)
    from cli.services import SERVICES
    from cli.stack import Stack
    from core.platform.config import get_settings
    from core.platform.migrate import upgrade_to_head

    get_settings.cache_clear()
    stack = Stack(get_settings(), SERVICES)
    stack.up(["postgres"], report=lambda _m: None)
    upgrade_to_head(get_settings())
    return stack, state


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6, 3)

    return {"n": len(ordered), "p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": at(1.0)}


def warmup(repeat: int) -> int:
    return repeat // 10


def timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    """Time ``repeat`` calls after ``warmup(repeat)`` untimed ones (plans, caches)."""
    for _ in range(warmup(repeat)):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return percentiles(samples)


def timed_together(
    operations: dict[str, Callable[[], object]], repeat: int
) -> dict[str, dict[str, float]]:
    """Like ``timed``, one call of each operation in turn, so bursts of load on the machine
    hit every operation alike instead of whichever ran at that moment."""
    for _ in range(warmup(repeat)):
        for fn in operations.values():
            fn()
    samples: dict[str, list[int]] = {name: [] for name in operations}
    for _ in range(repeat):
        for name, fn in operations.items():
            start = time.perf_counter_ns()
            fn()
            samples[name].append(time.perf_counter_ns() - start)
    return {name: percentiles(values) for name, values in samples.items()}


def load(engine, records: int, rnd: random.Random) -> list[str]:
    """COPY ``records`` rows into one period; scores collide often, so ties matter."""
    import psycopg
    from sqlalchemy import text

    from core.identity.game_keys import create_game
    from core.leaderboards import blocks, definitions
    from core.platform.config import get_settings
    from core.platform.db import session_scope

    with session_scope() as session:
        create_game(session, "Bench", GAME)
    with engine.begin() as conn:
        board = definitions.create_leaderboard(conn, leaderboard_id=BOARD, game_id=GAME, now=BASE)
    owners = [f"player-{i:07d}" for i in range(records)]
    period = board.period_start.isoformat()
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            columns = "leaderboard_id, period_start, owner_id, score, sort_key, num_score,"
            columns += " reached_at, updated_at"
            with cur.copy(f"COPY leaderboard_records ({columns}) FROM STDIN") as copy:
                chunk: list[str] = []
                for owner in owners:
                    score = rnd.randint(0, 200_000)
                    reached = (BASE + timedelta(seconds=rnd.randint(0, 600_000))).isoformat()
                    chunk.append(
                        f"{BOARD}\t{period}\t{owner}\t{score}\t{-score}\t1\t{reached}\t{reached}\n"
                    )
                    if len(chunk) == 50_000:
                        copy.write("".join(chunk))
                        chunk.clear()
                copy.write("".join(chunk))
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        blocks.rebuild_rank_blocks(conn, BOARD, board.period_start)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) leaderboard_records"))
        conn.execute(text("VACUUM (ANALYZE) leaderboard_rank_blocks"))
    # Flush the bulk load now, so its writes do not land in the middle of the timings.
    with psycopg.connect(get_settings().superuser_dsn + " dbname=stride", autocommit=True) as su:
        su.execute("CHECKPOINT")
    return owners


# ---- a minimal RESP client, enough for the comparison (no extra dependency) -------------


class Resp:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = self.sock.makefile("rb")

    def send(self, *args: object) -> None:
        parts = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            data = str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))

    def reply(self) -> object:
        line = self.buf.readline()
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b"-"):
            if kind == b"-":
                raise RuntimeError(rest.decode())
            return rest.decode()
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.buf.read(n + 2)[:-2].decode()
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise RuntimeError(f"unexpected reply {line!r}")

    def call(self, *args: object) -> object:
        self.send(*args)
        return self.reply()


def redis_figures(engine, owners: list[str], lookups: int, rnd: random.Random) -> dict | None:
    server = shutil.which("redis-server")
    if server is None:
        return None
    from sqlalchemy import text

    from cli.stack import free_port

    port = free_port()
    workdir = tempfile.mkdtemp(prefix="stride-bench-redis-")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client = Resp(port)
                client.call("PING")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        started = time.perf_counter()
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT owner_id, score FROM leaderboard_records WHERE leaderboard_id = :b"),
                {"b": BOARD},
            )
            pending = 0
            for batch in rows.partitions(1000):
                args: list[object] = ["ZADD", "lb"]
                for owner, score in batch:
                    args += [score, owner]
                client.send(*args)
                pending += 1
            for _ in range(pending):
                client.reply()
        load_s = time.perf_counter() - started
        sample = [rnd.choice(owners) for _ in range(lookups + warmup(lookups))]
        it = iter(sample)
        rank = timed(lambda: client.call("ZREVRANK", "lb", next(it)), lookups)
        top = timed(lambda: client.call("ZREVRANGE", "lb", 0, 99, "WITHSCORES"), lookups)
        memory = client.call("MEMORY", "USAGE", "lb")
        return {
            "load_from_postgres_s": round(load_s, 1),
            "zrevrank": rank,
            "zrevrange_top_100": top,
            "sorted_set_bytes": memory,
            "note": "ties ordered by member name, not by time reached",
        }
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    rnd = random.Random(args.seed)

    load_before = os.getloadavg()[0]
    stack, state = private_postgres()
    try:
        from sqlalchemy import text

        from core.leaderboards import definitions, reads, writer
        from core.leaderboards.rules import ScoreSubmission
        from core.platform.db import get_engine

        engine = get_engine()
        started = time.perf_counter()
        owners = load(engine, args.records, rnd)
        load_s = time.perf_counter() - started
        print(f"loaded {args.records:,} records (COPY, blocks, VACUUM) in {load_s:.1f}s")

        n = args.lookups
        figures: dict[str, object] = {}
        with engine.connect() as conn:
            period = definitions.current_board_period(definitions.get_leaderboard(conn, BOARD))
            keys = conn.execute(
                text(
                    "SELECT sort_key, reached_at, owner_id FROM leaderboard_records"
                    " WHERE leaderboard_id = :b ORDER BY random() LIMIT :n"
                ),
                {"b": BOARD, "n": n + warmup(n)},
            ).all()
            cursors = iter(
                [
                    reads._encode_cursor(BOARD, period, tuple(k), 1 + i)  # rank is not checked
                    for i, k in enumerate(keys)
                ]
            )
            sample = iter([rnd.choice(owners) for _ in range(n + warmup(n))])
            around_sample = iter([rnd.choice(owners) for _ in range(n + warmup(n))])
            figures.update(
                timed_together(
                    {
                        "top_100": lambda: reads.top(conn, BOARD, limit=100),
                        "page_100_after_random_cursor": lambda: reads.top(
                            conn, BOARD, limit=100, cursor=next(cursors)
                        ),
                        "rank_of_player": lambda: reads.rank_of(conn, BOARD, next(sample)),
                        "around_player_10": lambda: reads.around(
                            conn, BOARD, next(around_sample), limit=10
                        ),
                    },
                    n,
                )
            )
            count_n = max(50, n // 10)
            count_sample = iter([rnd.choice(owners) for _ in range(count_n + warmup(count_n))])
            count_sql = text(
                "SELECT 1 + count(*) FROM leaderboard_records r, leaderboard_records me"
                " WHERE me.leaderboard_id = :b AND me.period_start = :p AND me.owner_id = :o"
                " AND r.leaderboard_id = :b AND r.period_start = :p"
                " AND (r.sort_key, r.reached_at, r.owner_id)"
                "  < (me.sort_key, me.reached_at, me.owner_id)"
            )
            figures["rank_by_count_alternative"] = timed(
                lambda: conn.execute(
                    count_sql, {"b": BOARD, "p": period.start, "o": next(count_sample)}
                ).scalar_one(),
                count_n,
            )
            check_owner = rnd.choice(owners)
            via_blocks = reads.rank_of(conn, BOARD, check_owner)
            via_count = conn.execute(
                count_sql, {"b": BOARD, "p": period.start, "o": check_owner}
            ).scalar_one()
            assert via_blocks is not None and via_blocks.rank == via_count, "ranks disagree"

        batch_samples = []
        for i in range(20):
            now = BASE + timedelta(days=1, seconds=i)
            batch = [
                ScoreSubmission(
                    GAME, rnd.choice(owners), rnd.randint(0, 200_000), uuid.uuid4(), now
                )
                for _ in range(1000)
            ]
            started_ns = time.perf_counter_ns()
            with engine.begin() as conn:
                writer.submit_scores(conn, batch, now=now)
            batch_samples.append(time.perf_counter_ns() - started_ns)
        writes = percentiles(batch_samples)
        writes["submissions_per_s_at_p50"] = round(1000 / (writes["p50_ms"] / 1000))
        figures["submit_scores_batch_1000"] = writes

        redis = redis_figures(engine, owners, n, rnd)
        result = {
            "benchmark": "leaderboard",
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                # Other work on the machine shows in the p99s: the 1-minute load average.
                "load_average_before": round(load_before, 1),
                "load_average_after": round(os.getloadavg()[0], 1),
            },
            "records": args.records,
            "load_s": round(load_s, 1),
            "design": "composite btree + rank blocks of ~1000 records (PostgreSQL only)",
            "postgres": figures,
            "redis_sorted_set": redis,
            "goal": "top-100 and rank-of-player p99 <= 5 ms",
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        for name, values in figures.items():
            print(f"{name:32s} " + "  ".join(f"{k}={v}" for k, v in values.items()))
        if redis:
            for name in ("zrevrank", "zrevrange_top_100"):
                print(f"redis {name:26s} " + "  ".join(f"{k}={v}" for k, v in redis[name].items()))
        print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
        print(f"wrote {RESULTS}")
    finally:
        stack.down(report=lambda _m: None)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
