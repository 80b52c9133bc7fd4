"""``stride backup``: pgBackRest backups of the local cluster, point-in-time restore into a
fresh cluster, and Delta time travel for the lake's tables (docs/operations.md)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli import backup
from cli.stack import StackError
from core.platform.config import get_settings

backup_app = typer.Typer(
    help="Backups and restores: PostgreSQL (pgBackRest, WAL archive) and the Delta lake.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def parse_time(value: str) -> datetime:
    """An ISO 8601 time; without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 time, e.g. 2026-12-01T14:05:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@backup_app.command("create")
def create(
    kind: Annotated[
        str, typer.Option("--type", help="full, diff (since the last full) or incr.")
    ] = "full",
) -> None:
    """Back up the running local cluster into the pgBackRest repository."""
    settings = get_settings()
    started = time.monotonic()
    try:
        with console.status(f"pgBackRest: {kind} backup..."):
            made = backup.create_backup(settings, kind)
    except StackError as exc:
        _fail(f"{exc}\nIs postgres running? `stride up postgres`")
    console.print(
        f"backup [bold]{made['label']}[/] ({made['type']}, "
        f"{made['database_bytes'] / 1e6:.1f} MB of data) in {time.monotonic() - started:.1f}s"
    )


@backup_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The backups in the repository and the WAL archive: what a restore can reach."""
    settings = get_settings()
    try:
        backups = backup.list_backups(settings)
    except StackError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(backups, indent=2))
        return
    table = Table(title=f"pgBackRest repository {backup.repo_dir(settings)}")
    for column in ("label", "type", "started", "stopped", "data MB", "stored MB"):
        table.add_column(column)
    for b in backups:
        table.add_row(
            b["label"],
            b["type"],
            b["started"],
            b["stopped"],
            f"{b['database_bytes'] / 1e6:.1f}",
            f"{b['repository_bytes'] / 1e6:.1f}",
        )
    console.print(table)
    if backups:
        console.print(f"restorable: from {backups[0]['stopped']} to the last archived WAL segment")


@backup_app.command("restore")
def restore(
    to: Annotated[
        str | None,
        typer.Option("--to", help="ISO 8601 time to restore to (default: the latest archived)."),
    ] = None,
    into: Annotated[
        Path | None,
        typer.Option(help="New, empty folder for the restored data (default under the state)."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port of the restored cluster.")] = None,
    keep_running: Annotated[
        bool, typer.Option(help="Leave the restored cluster running to inspect it.")
    ] = False,
    replace_live: Annotated[
        bool,
        typer.Option(
            "--replace-live",
            help="Then swap it in for the live cluster's data (postgres must be stopped; the "
            "old data folder is kept beside it).",
        ),
    ] = False,
) -> None:
    """Restore the cluster to a point in time into a FRESH cluster (the live one is untouched
    unless --replace-live)."""
    settings = get_settings()
    target = parse_time(to) if to else None
    if replace_live and keep_running:
        _fail("--replace-live and --keep-running exclude each other")
    try:
        restored = backup.restore(
            settings,
            target_time=target,
            into=into,
            port=port,
            keep_running=keep_running,
            report=console.log,
        )
        console.print(
            f"restored into [bold]{restored.data_dir}[/] in {restored.seconds:.1f}s"
            + (f" (to {target.isoformat()})" if target else " (to the latest archived WAL)")
        )
        if restored.pid:
            console.print(
                f"running on 127.0.0.1:{restored.port} (pid {restored.pid}); "
                f"stop it with `kill -INT {restored.pid}`"
            )
        if replace_live:
            backup.replace_live(settings, restored.data_dir, report=console.log)
            console.print("the restored data is now the live cluster's: `stride up postgres`")
    except StackError as exc:
        _fail(str(exc))


@backup_app.command("lake-history")
def lake_history(
    table: Annotated[str, typer.Argument(help="A lake table, e.g. bronze/game_events.")],
    limit: Annotated[int, typer.Option(help="How many commits.")] = 20,
) -> None:
    """The latest versions of a Delta table (what lake-restore can go back to)."""
    for entry in backup.lake_history(get_settings(), table, limit):
        typer.echo(f"{entry['version']}\t{entry['timestamp']}\t{entry['operation']}")


@backup_app.command("lake-restore")
def lake_restore(
    table: Annotated[str, typer.Argument(help="A lake table, e.g. bronze/game_events.")],
    version: Annotated[int | None, typer.Option(help="Version to restore to.")] = None,
    at: Annotated[str | None, typer.Option("--at", help="Or an ISO 8601 time.")] = None,
) -> None:
    """Restore a Delta table to an earlier version, as a new commit (history is kept)."""
    try:
        result = backup.restore_lake_table(
            get_settings(), table, version=version, at=parse_time(at) if at else None
        )
    except StackError as exc:
        _fail(str(exc))
    console.print(
        f"{table}: version {result['from_version']} -> restored as version {result['new_version']}"
    )
