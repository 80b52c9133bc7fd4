"""Backups of the local PostgreSQL cluster with pgBackRest (Debian), and point-in-time restore
into a fresh cluster.

The cluster archives every WAL segment to the pgBackRest repository (``archive_command``,
set by ``stride up postgres`` when pgbackrest is installed; ``archive_timeout`` closes a
segment at least every ``backup_archive_timeout_s`` while anything is written): a full or
differential backup plus the archived WAL restore the cluster to any moment since the
oldest backup kept. The repository lives beside the cluster's data (``<state>/backups``,
or ``/var/lib/stride/backups-<hash>`` when the cluster runs as an OS user who cannot reach
the state folder); production points the repository at S3 (``repo1-type=s3``).

A restore never touches the live cluster unless asked (``replace_live``): it writes a new
data folder, starts a private PostgreSQL on it with archiving off (so the copy does not
write into the live cluster's archive) until recovery reaches the target and promotes it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from cli.services import PG_MAX_CONNECTIONS, _chown_tree, pg_binary, pg_data_dir, pg_os_user
from cli.stack import Reporter, StackError, free_port, private_dir, tail
from core.platform.config import Settings

PGBACKREST = "pgbackrest"


def pgbackrest_binary() -> str | None:
    return shutil.which(PGBACKREST)


def cluster_home(settings: Settings) -> Path:
    """The folder above the cluster's data, reachable by its OS user."""
    return pg_data_dir(settings).parent


def socket_dir(settings: Settings) -> Path:
    """The cluster's Unix socket folder (mode 0700, its OS user's): pgBackRest connects there."""
    return cluster_home(settings) / "socket"


def config_path(settings: Settings) -> Path:
    return cluster_home(settings) / "pgbackrest" / "pgbackrest.conf"


def repo_dir(settings: Settings) -> Path:
    if settings.backup_repo_dir:
        return settings.backup_repo_dir
    return private_dir(settings, pg_os_user(settings), "backups")


def pgbackrest_config(settings: Settings) -> str:
    """pgbackrest.conf of the local cluster (pure: paths and settings only)."""
    home = config_path(settings).parent
    lines = [
        "# Written by `stride up postgres` on every start (cli/backup.py); edits are lost.",
        "[global]",
        f"repo1-path={repo_dir(settings)}",
        f"repo1-retention-full={settings.backup_retention_full}",
        f"process-max={settings.backup_process_max}",
        "compress-type=lz4",  # fast enough not to be the bottleneck on 2 cores
        "start-fast=y",  # checkpoint at once instead of waiting for the next one
        f"log-path={home / 'log'}",
        f"lock-path={home / 'lock'}",
        f"spool-path={home / 'spool'}",
        "log-level-console=warn",
        "log-level-file=info",
        "",
        f"[{settings.backup_stanza}]",
        f"pg1-path={pg_data_dir(settings)}",
        f"pg1-port={settings.pg_port}",
        f"pg1-socket-path={socket_dir(settings)}",
        "pg1-user=postgres",
        "",
    ]
    return "\n".join(lines)


def archive_command(settings: Settings) -> str:
    command = [
        pgbackrest_binary() or PGBACKREST,
        f"--config={config_path(settings)}",
        f"--stanza={settings.backup_stanza}",
    ]
    return " ".join(shlex.quote(part) for part in command) + " archive-push %p"


def postgres_archive_options(settings: Settings) -> list[str]:
    """The ``postgres -c`` options that archive WAL to the repository (none without
    pgbackrest: a failing archive_command would keep every WAL segment until the disk fills)."""
    if pgbackrest_binary() is None:
        return []
    return [
        "-c",
        "archive_mode=on",
        "-c",
        f"archive_command={archive_command(settings)}",
        "-c",
        f"archive_timeout={settings.backup_archive_timeout_s}",
        "-c",
        f"unix_socket_directories={socket_dir(settings)}",
    ]


def prepare(settings: Settings, report: Reporter) -> None:
    """Before the cluster starts: its socket folder, pgBackRest's config and repository."""
    if pgbackrest_binary() is None:
        report("postgres: pgbackrest not installed: WAL archiving and `stride backup` are off")
        return
    user = pg_os_user(settings)
    socket_dir(settings).mkdir(mode=0o700, exist_ok=True)
    home = config_path(settings).parent
    for folder in (home, home / "log", home / "lock", home / "spool"):
        folder.mkdir(parents=True, exist_ok=True)
    config_path(settings).write_text(pgbackrest_config(settings))
    repo = repo_dir(settings)
    repo.mkdir(mode=0o750, parents=True, exist_ok=True)
    _chown_tree(socket_dir(settings), user)
    _chown_tree(home, user)
    _chown_tree(repo, user)


def run_pgbackrest(
    settings: Settings, *args: str, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run pgbackrest as the cluster's OS user with the local config; StackError on failure."""
    binary = pgbackrest_binary()
    if binary is None:
        raise StackError("pgbackrest not found: install it (Debian: apt-get install pgbackrest)")
    env = {**os.environ, "PGPASSWORD": settings.local_secret("postgres_password")}
    command = [binary, f"--config={config_path(settings)}", f"--stanza={settings.backup_stanza}"]
    result = subprocess.run(  # noqa: S603 - our own command line
        [*command, *args],
        capture_output=True,
        text=True,
        env=env,
        user=pg_os_user(settings),
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(
            f"pgbackrest {args[-1]} failed (exit {result.returncode}):\n"
            + (result.stderr.strip() or result.stdout.strip())[-3000:]
        )
    return result


def ensure_stanza(settings: Settings, report: Reporter) -> None:
    """Once the cluster is up: create the stanza (idempotent), so archiving succeeds."""
    if pgbackrest_binary() is None:
        return
    try:
        run_pgbackrest(settings, "stanza-create", timeout=120)
    except StackError as exc:
        raise StackError(
            f"{exc}\nThe cluster archives its WAL to {repo_dir(settings)}. If that repository "
            "belongs to an earlier cluster (its data folder was deleted), move it aside or set "
            "STRIDE_BACKUP_REPO_DIR to a new folder, then `stride up postgres` again."
        ) from exc
    report(f"postgres: WAL archived by pgBackRest to {repo_dir(settings)}")


def create_backup(settings: Settings, kind: str = "full") -> dict[str, Any]:
    """Take a backup (``full``, ``diff`` or ``incr``) of the running cluster; its info."""
    if kind not in ("full", "diff", "incr"):
        raise StackError(f"backup type must be full, diff or incr, not {kind!r}")
    run_pgbackrest(settings, f"--type={kind}", "backup")
    return list_backups(settings)[-1]


def info(settings: Settings) -> dict[str, Any]:
    result = run_pgbackrest(settings, "--output=json", "info")
    stanzas = json.loads(result.stdout)
    return stanzas[0] if stanzas else {}


def list_backups(settings: Settings) -> list[dict[str, Any]]:
    """Every backup of the repository, oldest first: label, type, times, sizes, WAL range."""
    backups = []
    for backup in info(settings).get("backup", []):
        backups.append(
            {
                "label": backup["label"],
                "type": backup["type"],
                "started": _iso(backup["timestamp"]["start"]),
                "stopped": _iso(backup["timestamp"]["stop"]),
                "database_bytes": backup["info"]["size"],
                "repository_bytes": backup["info"]["repository"]["delta"],
                "wal_start": backup["archive"]["start"],
                "wal_stop": backup["archive"]["stop"],
            }
        )
    return backups


def backup_before(backups: list[dict[str, Any]], target: datetime) -> str:
    """The label of the latest backup that ended by ``target`` (pgBackRest keeps stop times
    to the second, and by itself refuses a backup that ended in the target's second)."""
    done = [b for b in backups if datetime.fromisoformat(b["stopped"]) <= target]
    if not done:
        oldest = backups[0]["stopped"] if backups else "never (no backup yet)"
        raise StackError(
            f"no backup ended by {target.isoformat()}: the earliest restorable time is {oldest}"
        )
    return str(done[-1]["label"])


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def archive_latest_wal(settings: Settings, timeout: float = 60.0) -> str | None:
    """Close the live cluster's current WAL segment and wait until it is archived, so a
    restore can reach up to now. The segment's name, or None when the cluster is down."""
    dsn = settings.superuser_dsn + " dbname=postgres connect_timeout=3"
    try:
        conn = psycopg.connect(dsn, autocommit=True)
    except psycopg.OperationalError:
        return None
    with conn:
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        segment = str(row[0]) if row else ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            archived = conn.execute(
                "SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver"
            ).fetchone()
            if archived and archived[0] and archived[0] >= segment:
                return segment
            time.sleep(0.1)  # archiving is asynchronous; bounded by the deadline
    raise StackError(
        f"WAL segment {segment} was not archived within {timeout:.0f}s; "
        f"see {config_path(settings).parent / 'log'} and the postgres log"
    )


@dataclass(frozen=True)
class RestoredCluster:
    data_dir: Path
    port: int
    pid: int | None  # running when asked to keep it
    seconds: float


def restore(
    settings: Settings,
    *,
    target_time: datetime | None,
    into: Path | None = None,
    port: int | None = None,
    keep_running: bool = False,
    report: Reporter = print,
) -> RestoredCluster:
    """Restore the latest backup (then WAL up to ``target_time``, else to the end of the
    archive) into a fresh data folder, and run PostgreSQL on it until recovery is over and
    the copy is promoted. The live cluster is not touched."""
    started = time.monotonic()
    label = backup_before(list_backups(settings), target_time) if target_time else None
    user = pg_os_user(settings)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    data = into or private_dir(settings, user, "restores") / stamp
    if data.exists() and any(data.iterdir()):
        raise StackError(f"{data} is not empty: restore into a new folder")
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    _chown_tree(data.parent if into is None else data, user)
    if archive_latest_wal(settings):
        report("restore: the live cluster's latest WAL is archived")
    args = [f"--pg1-path={data}", "--archive-mode=off"]
    if target_time is not None:
        when = target_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
        args += [f"--set={label}", "--type=time", f"--target={when}", "--target-action=promote"]
    report(f"restore: writing the latest backup into {data}")
    run_pgbackrest(settings, *args, "restore")
    port = port or free_port()
    process = _start_restored(settings, data, port)
    try:
        _wait_promoted(settings, port, process, data)
    except BaseException:
        _stop(process)
        raise
    seconds = time.monotonic() - started
    if keep_running:
        return RestoredCluster(data, port, process.pid, seconds)
    _stop(process)
    return RestoredCluster(data, port, None, seconds)


def _start_restored(settings: Settings, data: Path, port: int) -> subprocess.Popen[bytes]:
    log = data.parent / f"{data.name}.log"
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own command line
            [
                pg_binary("postgres") or "postgres",
                "-D",
                str(data),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                f"max_connections={PG_MAX_CONNECTIONS}",
                "-c",
                "archive_mode=off",  # a copy must not archive into the live cluster's stanza
                "-c",
                "logging_collector=off",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            user=pg_os_user(settings),
        )


def restored_dsn(settings: Settings, port: int) -> str:
    password = settings.local_secret("postgres_password")
    return f"host=127.0.0.1 port={port} user=postgres password={password} connect_timeout=2"


def _wait_promoted(
    settings: Settings,
    port: int,
    process: subprocess.Popen[bytes],
    data: Path,
    timeout: float = 600,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(
                f"the restored cluster exited during recovery (exit {process.returncode}):\n"
                + tail(data.parent / f"{data.name}.log")
            )
        try:
            with psycopg.connect(restored_dsn(settings, port) + " dbname=postgres") as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if row and row[0] is False:
                    return
        except psycopg.OperationalError:
            pass  # still starting or replaying WAL
        time.sleep(0.2)  # readiness polling, bounded by the deadline
    raise StackError(f"the restored cluster did not finish recovery within {timeout:.0f}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # fast shutdown
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_restored(pid: int | None, timeout: float = 60.0) -> None:
    """Stop a restored cluster left running (fast shutdown), by its pid."""
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return
        except ChildProcessError:  # not our child: wait until it is gone
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.05)  # shutdown polling, bounded by the deadline
    os.kill(pid, signal.SIGKILL)


def replace_live(settings: Settings, restored: Path, report: Reporter = print) -> Path:
    """Swap a restored data folder in for the live cluster's (which must be stopped); the old
    folder is kept beside it. Returns where the old data went."""
    from cli.services import POSTGRES
    from cli.stack import Stack

    if Stack(settings, [POSTGRES]).pid("postgres") is not None:
        raise StackError("postgres is running: stop it first (`stride down postgres`)")
    live = pg_data_dir(settings)
    aside = live.with_name(f"data.before-restore-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    if live.exists():
        live.rename(aside)
        report(f"restore: the old data folder is kept as {aside}")
    shutil.move(str(restored), str(live))
    _chown_tree(live, pg_os_user(settings))
    return aside


# ---- the lake: Delta time travel -----------------------------------------------------------


def lake_history(settings: Settings, table: str, limit: int = 20) -> list[dict[str, Any]]:
    """The latest commits of a lake table (version, time, operation), newest first."""
    from deltalake import DeltaTable

    from core.lake.bronze import storage_options, table_uri

    uri = table_uri(settings.lake_root, table)
    return [
        {
            "version": entry.get("version"),
            "timestamp": _iso(int(entry["timestamp"]) // 1000) if "timestamp" in entry else None,
            "operation": entry.get("operation"),
        }
        for entry in DeltaTable(uri, storage_options=storage_options(uri)).history(limit)
    ]


def restore_lake_table(
    settings: Settings, table: str, *, version: int | None = None, at: datetime | None = None
) -> dict[str, Any]:
    """Restore a Delta table (e.g. ``bronze/game_events``) to a version or a time, as a new
    commit (delta-rs ``RESTORE``): history stays, so a wrong restore is undone the same way.
    Files the lake vacuum removed (after ``lake_vacuum_retention_hours``) cannot come back:
    production keeps them by S3 bucket versioning."""
    from deltalake import DeltaTable

    from core.lake.bronze import storage_options, table_uri

    if (version is None) == (at is None):
        raise StackError("give either a version or a time to restore the table to")
    uri = table_uri(settings.lake_root, table)
    delta = DeltaTable(uri, storage_options=storage_options(uri))
    before = delta.version()
    target: int | datetime = version if version is not None else at  # type: ignore[assignment]
    metrics = delta.restore(target)
    return {"table": table, "from_version": before, "new_version": delta.version(), **metrics}
