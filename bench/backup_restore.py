"""Backup and point-in-time restore of a ~1 GB database with pgBackRest, timed.

Starts a private PostgreSQL with WAL archiving (the same supervisor and service declaration
as ``stride up``) in a temporary folder on a free port, builds about 1 GB with ``pgbench
-i`` (COPY into ``pgbench_accounts``), then times:

* a full backup (``stride backup create``'s function);
* writes after it (``pgbench`` transactions for a few seconds), a noted time, more writes;
* a restore to the noted time into a fresh cluster, until it is promoted
  (``stride backup restore --to``): the RTO of the database alone;
* how far behind "now" the archive can be (``archive_timeout``): the RPO.

Prints the figures and writes ``bench/results/backup_restore.json``.

    .venv/bin/python -m bench.backup_restore [--scale 68] [--write-seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "backup_restore.json"


def _pgbench(settings, *args: str) -> None:
    from cli.services import pg_binary

    env = {**os.environ, "PGPASSWORD": settings.local_secret("postgres_password")}
    subprocess.run(
        [
            pg_binary("pgbench") or "pgbench",
            "-h",
            "127.0.0.1",
            "-p",
            str(settings.pg_port),
            "-U",
            "postgres",
            *args,
            "stride",
        ],
        check=True,
        env=env,
        capture_output=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=int, default=68, help="pgbench scale (68 ~ 1 GB)")
    parser.add_argument("--write-seconds", type=int, default=10)
    args = parser.parse_args()

    from cli.services import isolated_stack_env

    state, env = isolated_stack_env("stride-bench-backup-")
    os.environ.update(env)
    import psycopg

    from cli import backup
    from cli.services import SERVICES
    from cli.stack import Stack
    from core.platform.config import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    stack = Stack(settings, SERVICES)
    load_before = os.getloadavg()[0]
    try:
        stack.up(["postgres"], report=lambda _m: None)
        dsn = settings.superuser_dsn + " dbname=stride"
        started = time.monotonic()
        _pgbench(settings, "-i", "-s", str(args.scale), "-q")
        load_s = time.monotonic() - started
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT pg_database_size('stride')").fetchone()
            db_bytes = int(row[0]) if row else 0
        print(f"built {db_bytes / 1e9:.2f} GB with pgbench -s {args.scale} in {load_s:.1f}s")

        started = time.monotonic()
        made = backup.create_backup(settings, "full")
        backup_s = time.monotonic() - started
        print(f"full backup in {backup_s:.1f}s ({made['repository_bytes'] / 1e6:.0f} MB stored)")

        _pgbench(settings, "-T", str(args.write_seconds), "-c", "2", "-N")
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT clock_timestamp(), count(*) FROM pgbench_history").fetchone()
            assert row
            noted, history_rows = row
        _pgbench(settings, "-T", "2", "-c", "2", "-N")

        restored = backup.restore(settings, target_time=noted, keep_running=True, report=print)
        try:
            copy_dsn = backup.restored_dsn(settings, restored.port) + " dbname=stride"
            with psycopg.connect(copy_dsn) as copy:
                row = copy.execute("SELECT count(*) FROM pgbench_history").fetchone()
                restored_rows = int(row[0]) if row else -1
        finally:
            backup.stop_restored(restored.pid)
        print(
            f"restore to {noted.isoformat()} into a fresh cluster in {restored.seconds:.1f}s "
            f"(history rows {restored_rows} of {history_rows} at the noted time)"
        )
        repo_bytes = sum(
            f.stat().st_size for f in backup.repo_dir(settings).rglob("*") if f.is_file()
        )
        result = {
            "benchmark": "backup_restore",
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "load_average_before": round(load_before, 1),
                "load_average_after": round(os.getloadavg()[0], 1),
            },
            "pgbackrest": subprocess.run(
                ["pgbackrest", "version"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip(),
            "pgbench_scale": args.scale,
            "database_bytes": db_bytes,
            "build_s": round(load_s, 1),
            "full_backup_s": round(backup_s, 1),
            "backup_repository_bytes": made["repository_bytes"],
            "repository_bytes_with_wal": repo_bytes,
            "writes_after_backup_s": args.write_seconds,
            "pitr_restore_s": round(restored.seconds, 1),
            "restored_rows_match": restored_rows == history_rows,
            "rpo_s_bound": settings.backup_archive_timeout_s,
        }
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        shutil.rmtree(restored.data_dir, ignore_errors=True)
    finally:
        stack.down(report=lambda _m: None)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
