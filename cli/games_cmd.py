"""``stride games``: register games and manage the API keys their servers post events with."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.identity.game_keys import (
    GameExists,
    NewKey,
    UnknownGame,
    create_game,
    list_games,
    rotate_key,
)
from core.platform.db import session_scope

games_app = typer.Typer(help="Games and their API keys (X-Api-Key).", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _print_key(new: NewKey, verb: str) -> None:
    console.print(f"game [bold]{new.game_id}[/] {verb}. Its API key (shown once, store it now):")
    typer.echo(new.api_key)


@games_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Display name, e.g. 'Tri Arena'.")],
    game_id: Annotated[
        str | None,
        typer.Option(help="Game id (a-z, 0-9, _ -); default: made from the name."),
    ] = None,
) -> None:
    """Register a game and print its new API key once."""
    try:
        with session_scope() as session:
            new = create_game(session, name, game_id)
    except GameExists as exc:
        err.print(f"[bold red]error:[/] {exc}; `stride games rotate-key ID` gives it a new key")
        raise typer.Exit(1) from None
    except ValueError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    _print_key(new, "created")


@games_app.command("rotate-key")
def rotate(game_id: Annotated[str, typer.Argument(help="The game id.")]) -> None:
    """Replace a game's API key; the old key stops working within the API's key cache TTL."""
    try:
        with session_scope() as session:
            new = rotate_key(session, game_id)
    except UnknownGame as exc:
        err.print(f"[bold red]error:[/] {exc}; see `stride games list`")
        raise typer.Exit(1) from None
    _print_key(new, "has a new key")


@games_app.command("list")
def list_() -> None:
    """List games with the first characters of their key (never the key)."""
    table = Table(title="games")
    for column in ("game id", "name", "key starts with", "active", "created"):
        table.add_column(column)
    with session_scope() as session:
        for game in list_games(session):
            table.add_row(
                game.game_id,
                game.name,
                game.api_key_prefix + "...",
                "yes" if game.is_active else "no",
                f"{game.created_at:%Y-%m-%d %H:%M}",
            )
    console.print(table)
