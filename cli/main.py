"""``stride``: the one entry point to run, inspect and operate the platform."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.backup_cmd import backup_app
from cli.battles_cmd import battles_app
from cli.chain_cmd import chain_app
from cli.content_cmd import content_app
from cli.contracts_cmd import bridge_app, contracts_app
from cli.db_cmd import db_app
from cli.demo import demo
from cli.games_cmd import games_app
from cli.leaderboards_cmd import leaderboards_app
from cli.pipeline_cmd import pipeline_app
from cli.rewards_cmd import rewards_app
from cli.services import SERVICES
from cli.stack import Stack, StackError, tail
from cli.sweep_cmd import sweep
from cli.users_cmd import users_app
from core.platform.config import get_settings

if TYPE_CHECKING:
    from core.identity.models import AdminRole

app = typer.Typer(
    help="Stride: run the local stack, migrate the database, manage admin users.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
admin_app = typer.Typer(help="Admin panel users.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(games_app, name="games")
app.command()(demo)
app.command()(sweep)
app.add_typer(leaderboards_app, name="leaderboards")
app.add_typer(users_app, name="users")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(contracts_app, name="contracts")
app.add_typer(bridge_app, name="bridge")
app.add_typer(backup_app, name="backup")
app.add_typer(chain_app, name="chain")
app.add_typer(rewards_app, name="rewards")
app.add_typer(battles_app, name="battles")
app.add_typer(content_app, name="content")

console = Console()
err = Console(stderr=True)


def stack() -> Stack:
    return Stack(get_settings(), SERVICES)


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


ServicesArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Services to act on (default: all). See `stride status`.", show_default=False
    ),
]


engines_app = typer.Typer(
    help="The JVM engines' jars (Kafka, Spark's Delta and S3 jars) from Maven Central.",
    no_args_is_help=True,
)
app.add_typer(engines_app, name="engines")


@engines_app.command("fetch")
def engines_fetch(
    names: Annotated[
        list[str] | None, typer.Argument(help="Engines to fetch (default: all).")
    ] = None,
) -> None:
    """Copy the engines' jars into .engines/ with Maven (a no-op when they are up to date)."""
    from cli import engines

    try:
        for name in names or engines.engine_names():
            engines.fetch(name, report=lambda m: console.print(f"    {m}"))
    except StackError as exc:
        fail(str(exc))


@app.command()
def up(services: ServicesArg = None) -> None:
    """Start the local stack on 127.0.0.1 and return when every service is ready."""
    started = time.monotonic()
    try:
        with console.status("starting the local stack...") as status:

            def report(message: str) -> None:
                status.update(message)
                console.log(message)

            stack().up(services, report=report)
    except StackError as exc:
        fail(str(exc))
    console.print(f"[bold green]Stride is up[/] in {time.monotonic() - started:.1f}s")
    _print_status(stack(), services)


@app.command()
def down(services: ServicesArg = None) -> None:
    """Stop the local stack (or only the services named)."""
    try:
        stack().down(services, report=console.log)
    except StackError as exc:
        fail(str(exc))


@app.command()
def status(
    services: ServicesArg = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show each service: running or not, URL, PID, log path, and lag and errors (Kafka
    consumer lag per group, API 5xx answers, dead letters). Exit 1 if one is not ready."""
    from cli.monitoring import service_details

    s = stack()
    try:
        names = [svc.name for svc in s.order(services)]
    except StackError as exc:
        fail(str(exc))
    statuses = [s.status(name) for name in names]
    if as_json:
        entries = [
            st.as_dict() | {"details": service_details(s.settings, st.name) if st.ready else None}
            for st in statuses
        ]
        typer.echo(json.dumps(entries, indent=2))
    else:
        _print_status(s, services)
    if not all(st.ready for st in statuses):
        raise typer.Exit(1)


def _print_status(s: Stack, services: list[str] | None) -> None:
    from cli.monitoring import details_text, service_details

    table = Table(title="Stride local stack")
    for column in ("service", "state", "lag and errors", "url", "pid", "log"):
        table.add_column(column)
    for svc in s.order(services):
        st = s.status(svc.name)
        if st.ready:
            state = "[green]ready[/]"
        elif st.running:
            state = f"[yellow]running, not ready[/] ({st.problem})"
        else:
            state = "[red]stopped[/]"
        details = details_text(service_details(s.settings, st.name)) if st.ready else ""
        table.add_row(st.name, state, details, st.url, str(st.pid or "-"), st.log)
    console.print(table)


@app.command()
def logs(
    service: Annotated[str, typer.Argument(help="Service name, e.g. postgres, kafka, api.")],
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many lines to show.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
) -> None:
    """Print the log of one service."""
    s = stack()
    if service not in s.services:
        fail(f"unknown service {service!r}; known: {', '.join(s.services)}")
    path: Path = s.log_file(service)
    if not path.exists():
        fail(f"{service} has no log yet ({path}); start it with `stride up {service}`")
    typer.echo(tail(path, lines))
    if follow:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            try:
                while True:
                    chunk = fh.read()
                    if chunk:
                        typer.echo(chunk.decode("utf-8", "replace"), nl=False)
                    else:
                        time.sleep(0.3)
            except KeyboardInterrupt:
                pass


USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{3,64}$")


ROLE_HELP = "viewer (browse, export), editor (also edit) or owner (also manage admin users)."


def _cli_actor() -> str:
    """Who the audit log names for a change made with the CLI."""
    import getpass

    return f"cli:{getpass.getuser()}"


def _admin_role(role: str) -> AdminRole:
    from core.identity.models import AdminRole

    if role not in {r.value for r in AdminRole}:
        fail(f"the role must be {', '.join(r.value for r in AdminRole)}, not {role!r}")
    return AdminRole(role)


@admin_app.command("create-user")
def create_user(
    username: Annotated[str, typer.Argument(help="Login name (3-64 letters, digits, _ . @ -).")],
    role: Annotated[str, typer.Option(help=ROLE_HELP)],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="STRIDE_ADMIN_PASSWORD",
            help="At least 12 characters; prompted when not given (or STRIDE_ADMIN_PASSWORD).",
        ),
    ],
    replace: Annotated[
        bool, typer.Option(help="Reset the password and role of an existing user.")
    ] = False,
) -> None:
    """Create a user of the admin panel (/admin)."""
    from core.identity.admin_users import AdminUserExists, create_admin_user
    from core.platform.db import session_scope

    admin_role = _admin_role(role)
    if not USERNAME.match(username):
        fail("username must be 3-64 characters: letters, digits, _ . @ -")
    try:
        with session_scope() as session:
            create_admin_user(
                session, username, password, admin_role, replace=replace, actor=_cli_actor()
            )
    except (AdminUserExists, ValueError) as exc:
        fail(str(exc))
    console.print(
        f"admin user [bold]{username}[/] ({role}) saved; log in at {get_settings().api_url}/admin"
    )


@admin_app.command("set-role")
def set_role(
    username: Annotated[str, typer.Argument(help="An existing admin user.")],
    role: Annotated[str, typer.Argument(help=ROLE_HELP)],
) -> None:
    """Change an admin user's role (audited; their sessions end). Makes the first owner."""
    from core.identity.admin_users import change_admin_role
    from core.platform.db import session_scope
    from core.platform.errors import NotFound

    admin_role = _admin_role(role)
    try:
        with session_scope() as session:
            before = change_admin_role(session, username, admin_role, actor=_cli_actor())
    except NotFound as exc:
        fail(str(exc))
    console.print(f"admin user [bold]{username}[/] was {before.value}, now {role}")


if __name__ == "__main__":
    app()
