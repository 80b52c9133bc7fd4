"""In-process A/B of the scoring transaction's CPU per event, by schema.

Starts a private PostgreSQL (``bench.leaderboard.private_postgres``), then, round by round
and schema by schema, applies ``bench/events_e2e``'s event mix with
:func:`core.events.store.apply_batch` (batches of ``--batch``; the first ``--warm``
batches of each run create the players' totals and are not measured) to a fresh game with
a ``best`` leaderboard, as the scoring worker does. Per event it measures the client's CPU
(``time.process_time``: the Python of the transaction), the PostgreSQL backend's CPU
(``/proc/<pid>/stat`` of the connection's backend) and the WAL written. Schemas:

* ``0023``: the indexes before migration 0024 (``processed_events`` with a primary key,
  four btree indexes and a BRIN);
* ``head``: the migrations' head;
* ``head_without_totals_index``: head without ``ix_player_totals_last_event_at`` (the admin
  home page's index, which makes every totals update non-HOT): what dropping it would buy,
  measured only (the index stays, docs/performance.md section 3).

Prints the least CPU per event of the rounds and the load average; writes
``bench/results/events_store.json``.
Run: ``.venv/bin/python -m bench.events_store [--rounds 3] [--batches 10] [--batch 2000]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "events_store.json"
TICK_S = 1 / os.sysconf("SC_CLK_TCK")
SCHEMAS = ("0023", "head", "head_without_totals_index")


def backend_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S  # utime + stime


def set_schema(schema: str) -> None:
    import psycopg
    from alembic import command
    from sqlalchemy import text

    from core.platform.config import get_settings
    from core.platform.db import get_engine
    from core.platform.migrate import alembic_config

    config = alembic_config(get_settings())
    command.downgrade(config, "0023") if schema == "0023" else command.upgrade(config, "head")
    with get_engine().begin() as conn:
        if schema == "head_without_totals_index":
            conn.execute(text("DROP INDEX IF EXISTS ix_player_totals_last_event_at"))
        else:
            conn.execute(
                text(
                    "CREATE INDEX IF NOT EXISTS ix_player_totals_last_event_at"
                    " ON player_totals (last_event_at)"
                )
            )
    # Every run starts from vacuumed tables and a flushed WAL (the superuser's CHECKPOINT).
    with psycopg.connect(get_settings().superuser_dsn + " dbname=stride", autocommit=True) as su:
        su.execute("VACUUM (ANALYZE) processed_events, player_totals")
        su.execute("CHECKPOINT")


def batches_of(args: argparse.Namespace, game_id: str) -> list[list[Any]]:
    from bench.events_e2e import event
    from core.events.contracts import GameEvent
    from core.platform.messages import Consumed

    now = datetime.now(UTC)
    sent = now.isoformat()
    batches = []
    offset = 0
    for _ in range(args.warm + args.batches):
        batch = []
        for _ in range(args.batch):
            body = {**event(offset % args.players, offset, sent), "game_id": game_id}
            value = GameEvent.model_validate({**body, "received_at": now})
            batch.append(Consumed(value, 0, offset, now))
            offset += 1
        batches.append(batch)
    return batches


def run(args: argparse.Namespace, schema: str) -> dict[str, float]:
    from sqlalchemy import text

    from bench.events_e2e import new_game
    from core.events.store import apply_batch
    from core.platform.config import get_settings
    from core.platform.db import engine_for, get_engine
    from core.rewards.commands import rules_from_settings

    game_id, _key = new_game(get_engine(), f"store-{schema[:4]}")
    batches = batches_of(args, game_id)
    engine = engine_for(get_settings().db_url + f"?application_name=bench-{uuid.uuid4().hex}")
    rules = rules_from_settings(get_settings())
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    for batch in batches[: args.warm]:
        apply_batch(engine, batch, rules)
    with engine.connect() as conn:
        wal_before = conn.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
    measured = batches[args.warm :]
    events = sum(len(b) for b in measured)
    client, backend = time.process_time(), backend_cpu_s(pid)
    for batch in measured:
        apply_batch(engine, batch, rules)
    client, backend = time.process_time() - client, backend_cpu_s(pid) - backend
    with engine.connect() as conn:
        wal = conn.execute(
            text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), :lsn)"), {"lsn": wal_before}
        ).scalar_one()
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid
    engine.dispose()
    return {
        "client_cpu_us": client / events * 1e6,
        "postgres_cpu_us": backend / events * 1e6,
        "wal_bytes": float(wal) / events,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.events_store", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=10, help="measured batches per run")
    parser.add_argument("--warm", type=int, default=5, help="unmeasured batches first")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--players", type=int, default=10_000)
    parser.add_argument("--schema", action="append", choices=SCHEMAS, help="default: all")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from bench.leaderboard import private_postgres

    schemas = args.schema or list(SCHEMAS)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    stack, state = private_postgres()
    runs: dict[str, list[dict[str, float]]] = {s: [] for s in schemas}
    try:
        for n in range(args.rounds):
            for schema in schemas:
                set_schema(schema)
                figures = run(args, schema)
                runs[schema].append(figures)
                print(
                    f"round {n + 1} {schema:>26}: client {figures['client_cpu_us']:6.1f},"
                    f" PostgreSQL {figures['postgres_cpu_us']:6.1f} µs CPU per event,"
                    f" WAL {figures['wal_bytes']:5.0f} B (load {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
    finally:
        stack.down(report=lambda _m: None)  # type: ignore[attr-defined]
        shutil.rmtree(state, ignore_errors=True)
    least = {s: {k: round(min(r[k] for r in rs), 1) for k in rs[0]} for s, rs in runs.items() if rs}
    for schema, figures in least.items():
        print(
            f"least of {args.rounds} {schema:>26}: client {figures['client_cpu_us']:6.1f},"
            f" PostgreSQL {figures['postgres_cpu_us']:6.1f} µs CPU per event,"
            f" WAL {figures['wal_bytes']:5.0f} B"
        )
    result = {
        "events_per_run": args.batches * args.batch,
        "batch": args.batch,
        "players": args.players,
        "load_average_at_start": [round(x, 2) for x in load],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "least_per_event": least,
        "runs": {s: [{k: round(v, 1) for k, v in r.items()} for r in rs] for s, rs in runs.items()},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
