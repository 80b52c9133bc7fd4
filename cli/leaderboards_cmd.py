"""``stride leaderboards``: create and list leaderboards, show standings, reset a period."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.leaderboards import definitions, reads, writer
from core.leaderboards.errors import LeaderboardError
from core.leaderboards.rules import Operator, SortOrder
from core.platform.db import get_engine

leaderboards_app = typer.Typer(
    help="Leaderboards: definitions, standings, period resets.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _period_start(value: str | None) -> datetime | None:
    """``--period`` as an aware time: ISO 8601, UTC when no offset is given."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        _fail(f"--period {value!r} is not an ISO 8601 time, e.g. 2026-11-16T00:00:00+00:00")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@leaderboards_app.command("create")
def create(
    leaderboard_id: Annotated[str, typer.Argument(help="Id: a-z, 0-9, _ . - (1-64 chars).")],
    game: Annotated[str, typer.Option("--game", help="Game id it ranks (stride games list).")],
    sort_order: Annotated[
        SortOrder, typer.Option("--sort", help="desc: higher is better; asc: lower is better.")
    ] = SortOrder.desc,
    operator: Annotated[
        Operator, typer.Option("--operator", help="best, set, incr or decr (floor 0).")
    ] = Operator.best,
    reset: Annotated[
        str | None,
        typer.Option("--reset", help="Cron reset schedule in UTC, e.g. '0 0 * * 1' (weekly)."),
    ] = None,
    metadata: Annotated[str, typer.Option("--metadata", help="JSON object.")] = "{}",
) -> None:
    """Create a leaderboard for a game."""
    try:
        meta = json.loads(metadata)
    except ValueError as exc:
        _fail(f"--metadata is not JSON: {exc}")
    if not isinstance(meta, dict):
        _fail("--metadata must be a JSON object, e.g. '{\"season\": 3}'")
    try:
        with get_engine().begin() as conn:
            board = definitions.create_leaderboard(
                conn,
                leaderboard_id=leaderboard_id,
                game_id=game,
                sort_order=sort_order,
                operator=operator,
                reset_schedule=reset,
                metadata=meta,
            )
    except LeaderboardError as exc:
        _fail(str(exc))
    period = definitions.current_board_period(board)
    console.print(
        f"leaderboard [bold]{board.id}[/] created for game {board.game_id} "
        f"({board.sort_order}, {board.operator}, "
        f"{board.reset_schedule or 'never resets'}); period starts {period.start:%Y-%m-%d %H:%M}"
    )


@leaderboards_app.command("list")
def list_(
    game: Annotated[str | None, typer.Option("--game", help="Only this game's.")] = None,
) -> None:
    """List leaderboards with their current period."""
    table = Table(title="leaderboards")
    for column in ("id", "game", "order", "operator", "reset", "current period"):
        table.add_column(column)
    with get_engine().connect() as conn:
        for board in definitions.list_leaderboards(conn, game):
            period = definitions.current_board_period(board)
            table.add_row(
                board.id,
                board.game_id,
                board.sort_order,
                board.operator,
                board.reset_schedule or "-",
                f"{period.start:%Y-%m-%d %H:%M} -> "
                + (f"{period.end:%Y-%m-%d %H:%M}" if period.end else "..."),
            )
    console.print(table)


@leaderboards_app.command("top")
def top(
    leaderboard_id: Annotated[str, typer.Argument(help="Leaderboard id.")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 10,
    period: Annotated[
        str | None,
        typer.Option(
            "--period", help="Start of a past period (see `periods`, ISO 8601); default: current."
        ),
    ] = None,
) -> None:
    """Print the best records of the current (or a past) period."""
    try:
        with get_engine().connect() as conn:
            page = reads.top(conn, leaderboard_id, limit=limit, period_start=_period_start(period))
    except LeaderboardError as exc:
        _fail(str(exc))
    end = f"{page.period.end:%Y-%m-%d %H:%M}" if page.period.end else "..."
    table = Table(title=f"{leaderboard_id}: {page.period.start:%Y-%m-%d %H:%M} -> {end}")
    for column in ("rank", "player", "score", "submissions", "reached at"):
        table.add_column(column, justify="right" if column != "player" else "left")
    for r in page.records:
        table.add_row(
            str(r.rank),
            r.owner_id,
            str(r.score),
            str(r.num_score),
            f"{r.reached_at:%Y-%m-%d %H:%M:%S}",
        )
    console.print(table)


@leaderboards_app.command("periods")
def periods(leaderboard_id: Annotated[str, typer.Argument(help="Leaderboard id.")]) -> None:
    """List every period of a leaderboard, newest first."""
    try:
        with get_engine().connect() as conn:
            summaries = definitions.list_periods(conn, leaderboard_id)
    except LeaderboardError as exc:
        _fail(str(exc))
    table = Table(title=f"{leaderboard_id}: periods")
    for column in ("start", "end", "archived at", "records"):
        table.add_column(column)
    for p in summaries:
        table.add_row(
            p.start.isoformat(),
            p.end.isoformat() if p.end else "-",
            p.archived_at.isoformat(timespec="seconds") if p.archived_at else "open",
            str(p.records),
        )
    console.print(table)


@leaderboards_app.command("reset")
def reset(
    leaderboard_id: Annotated[str, typer.Argument(help="Leaderboard id.")],
    period: Annotated[
        str | None,
        typer.Option(
            "--period",
            help="Start of the period to archive (ISO 8601); if it is archived, nothing happens.",
        ),
    ] = None,
) -> None:
    """Archive the current period and start the next. Running it again does nothing."""
    try:
        with get_engine().begin() as conn:
            outcome = definitions.reset_leaderboard(
                conn, leaderboard_id, period_start=_period_start(period)
            )
    except LeaderboardError as exc:
        _fail(str(exc))
    if not outcome.archived:
        console.print(f"nothing to do: {outcome.reason}")
        return
    archived = ", ".join(f"{start:%Y-%m-%d %H:%M:%S}" for start in outcome.archived)
    console.print(
        f"{outcome.reason}: archived the period from {archived}; "
        f"the current period starts {outcome.current_start:%Y-%m-%d %H:%M:%S}"
    )


@leaderboards_app.command("prune")
def prune(
    older_than_days: Annotated[
        int | None,
        typer.Option(
            "--older-than-days",
            min=1,
            help="Also forget events of open periods seen this many days ago or more: only if "
            "no older event can be replayed (longer than the topic's retention).",
        ),
    ] = None,
) -> None:
    """Forget the event ids of archived periods (kept only to ignore replays)."""
    before = datetime.now(UTC) - timedelta(days=older_than_days) if older_than_days else None
    with get_engine().begin() as conn:
        deleted = writer.prune_submissions(conn, created_before=before)
    console.print(f"deleted {deleted:,} submission rows")
