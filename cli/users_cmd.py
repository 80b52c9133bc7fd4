"""``stride users``: app users who upload wearable data, and their bearer tokens."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from core.identity.app_users import (
    AppUserExists,
    NewToken,
    UnknownAppUser,
    create_app_user,
    deactivate,
    rotate_token,
)
from core.platform.db import session_scope

users_app = typer.Typer(
    help="App users and their bearer tokens (wearable uploads).", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)

UserIdArg = Annotated[str, typer.Argument(help="App user id (letters, digits, _ . : @ -).")]


def _fail(exc: Exception, hint: str = "") -> None:
    err.print(f"[bold red]error:[/] {exc}{hint}")
    raise typer.Exit(1) from None


def _print_token(new: NewToken, verb: str) -> None:
    console.print(
        f"app user [bold]{new.user_id}[/] {verb}. Bearer token (shown once, store it now):",
        highlight=False,
    )
    typer.echo(new.token)


@users_app.command("create")
def create(user_id: UserIdArg) -> None:
    """Create an app user and print their bearer token once."""
    try:
        with session_scope() as session:
            new = create_app_user(session, user_id)
    except AppUserExists as exc:
        _fail(exc, "; `stride users rotate-token` gives them a new token")
    except ValueError as exc:
        _fail(exc)
    _print_token(new, "created")


@users_app.command("rotate-token")
def rotate(user_id: UserIdArg) -> None:
    """Replace a user's token (and reactivate them); the old one stops working."""
    try:
        with session_scope() as session:
            new = rotate_token(session, user_id)
    except UnknownAppUser as exc:
        _fail(exc, "; create one with `stride users create`")
    _print_token(new, "has a new token")


@users_app.command("deactivate")
def deactivate_(user_id: UserIdArg) -> None:
    """Stop accepting the user's token (within the API's token cache TTL)."""
    try:
        with session_scope() as session:
            deactivate(session, user_id)
    except UnknownAppUser as exc:
        _fail(exc, "; create one with `stride users create`")
    console.print(f"app user [bold]{user_id}[/] deactivated")
