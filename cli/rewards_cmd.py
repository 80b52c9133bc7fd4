"""``stride rewards``: the reward commands and where the chain writer has them; retries."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.platform.config import get_settings
from core.platform.db import engine_for
from core.rewards import store
from core.rewards.commands import RewardStatus

rewards_app = typer.Typer(
    help="Reward commands (mint/burn): list them, retry failed ones.", no_args_is_help=True
)
console = Console()


@rewards_app.command("list")
def list_(
    status: Annotated[
        RewardStatus | None, typer.Option("--status", help="Only commands in this status.")
    ] = None,
    game: Annotated[str | None, typer.Option("--game", help="Only this game.")] = None,
    player: Annotated[str | None, typer.Option("--player", help="Only this player.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Newest commands first: status, why it waits or failed, the transaction carrying it."""
    rows = store.list_commands(
        engine_for(get_settings().db_url),
        status=status,
        game_id=game,
        player_id=player,
        limit=limit,
    )
    if as_json:
        typer.echo(json.dumps(rows, default=str))
        return
    table = Table("command", "action", "status", "game", "player", "amount", "tx", "reason")
    for r in rows:
        table.add_row(
            str(r["command_id"]),
            r["action"],
            r["status"],
            r["game_id"],
            r["player_id"],
            f"{r['amount']:f} {r['token']}",
            r["tx_hash"] or "",
            r["reason"] or "",
        )
    console.print(table)
    counts = store.status_counts(engine_for(get_settings().db_url))
    console.print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no commands")


@rewards_app.command("retry")
def retry(
    command_ids: Annotated[
        list[str] | None, typer.Argument(help="Commands to retry (failed or waiting).")
    ] = None,
    all_failed: Annotated[
        bool, typer.Option("--all-failed", help="Retry every failed command.")
    ] = False,
) -> None:
    """Put failed (or waiting) commands back to pending: the writer resolves and sends them
    again. Confirmed commands are never retried, and the contract never pays one twice."""
    if bool(command_ids) == all_failed:
        console.print("[red]give command ids or --all-failed (not both)[/red]")
        raise typer.Exit(2)
    ids: list[uuid.UUID] | None = None
    if command_ids:
        try:
            ids = [uuid.UUID(c) for c in command_ids]
        except ValueError as exc:
            console.print(f"[red]not a command id: {exc}[/red]")
            raise typer.Exit(2) from exc
    count = store.retry(engine_for(get_settings().db_url), ids, datetime.now(UTC))
    console.print(f"{count} command(s) back to pending")
    if ids is not None and count < len(ids):
        console.print(
            f"[yellow]{len(ids) - count} were not retried: unknown, confirmed, or already "
            "on their way (`stride rewards list` shows them)[/yellow]"
        )
        raise typer.Exit(1)
