"""Two engine processes at once, with and without shared players: what keying
``battles.requests.v1`` by game buys.

Starts a private PostgreSQL, creates ``--players`` players in each of three games, then, per
round, runs two processes that each call ``core.battles.store.resolve_batch`` on
``--batches`` batches of ``--batch`` duels (queued first as the API queues them, not timed):

- *one game*: both processes resolve battles of the same game over the same players (what
  keying by battle id did: every partition carries every game, so both engine processes lock
  overlapping players and wait on each other's transactions);
- *a game each*: each process resolves its own game's battles (keyed by game: one process
  owns a game's players).

Prints battles/s (both processes' battles over the slower one's wall time) per round and the
load average; run it when the machine is quiet, the two variants are interleaved.
Run: ``.venv/bin/python -m bench.battles_contention [--rounds 2]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import shutil
import time
import uuid
from datetime import UTC, datetime
from typing import Any

GAMES = ("g-shared", "g-a", "g-b")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.battles_contention", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batches", type=int, default=12, help="batches per process")
    parser.add_argument("--batch", type=int, default=500, help="duels per batch")
    parser.add_argument("--players", type=int, default=40_000, help="players per game")
    return parser.parse_args(argv)


def engine_process(
    url: str, game: str, seed: int, args: argparse.Namespace, ready: Any, start: Any, out: Any
) -> None:
    from sqlalchemy.orm import Session

    from bench.battles import duel
    from core.battles.contracts import BattleRequest
    from core.battles.store import queue_battles, resolve_batch
    from core.platform.db import engine_for

    engine = engine_for(url, pool_size=2)
    rng = random.Random(seed)
    now = datetime.now(UTC)
    work = [
        [
            BattleRequest(
                battle_id=uuid.uuid4(), game_id=game, requested_at=now, **duel(rng, args.players)
            )
            for _ in range(args.batch)
        ]
        for _ in range(args.batches)
    ]
    for requests in work:
        with Session(engine) as session, session.begin():
            queue_battles(session, [(r, None) for r in requests])
    ready.put(True)
    start.wait()
    started = time.perf_counter()
    for requests in work:
        resolve_batch(engine, requests, now)
    out.put(time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from cli.services import isolated_stack_env

    state, env = isolated_stack_env("stride-bench-contention-")
    os.environ.update(env)
    from sqlalchemy import text

    from cli.services import SERVICES
    from cli.stack import Stack
    from core.identity.game_keys import create_game
    from core.platform.config import get_settings
    from core.platform.db import engine_for, reset_engines, session_scope
    from core.platform.migrate import upgrade_to_head

    get_settings.cache_clear()
    reset_engines()
    settings = get_settings()
    stack = Stack(settings, SERVICES)
    try:
        stack.up(["postgres"], report=lambda m: print("  " + m))
        upgrade_to_head(settings)
        with session_scope() as session:
            for game in GAMES:
                create_game(session, game, game)
        with engine_for(settings.db_url).begin() as conn:  # players who battled before
            conn.execute(
                text(
                    "INSERT INTO players (game_id, player_id, display_name, mu, sigma)"
                    " SELECT g, 'p' || i, 'p' || i, 25.0, 25.0 / 3"
                    " FROM unnest(CAST(:games AS text[])) g, generate_series(0, :n - 1) i"
                ),
                {"games": list(GAMES), "n": args.players},
            )
        for round_no in range(args.rounds):
            for label, games in (("one game", GAMES[:1] * 2), ("a game each", GAMES[1:])):
                ready, out, start = mp.Queue(), mp.Queue(), mp.Event()
                processes = [
                    mp.Process(
                        target=engine_process,
                        args=(settings.db_url, game, 100 * round_no + i, args, ready, start, out),
                    )
                    for i, game in enumerate(games)
                ]
                for process in processes:
                    process.start()
                for _ in processes:
                    ready.get()  # both have queued their battles
                start.set()
                walls = [out.get() for _ in processes]
                for process in processes:
                    process.join()
                count = len(processes) * args.batches * args.batch
                print(
                    f"round {round_no}, {label}: {count / max(walls):.0f} battles/s "
                    f"(walls {', '.join(f'{w:.1f}' for w in walls)} s, "
                    f"load average {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
    finally:
        stack.down(report=lambda _m: None)
        reset_engines()
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
