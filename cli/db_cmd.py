"""``stride db``: Alembic migrations of the application database."""

from __future__ import annotations

from typing import Annotated

import typer
from alembic import command

from core.platform.config import get_settings
from core.platform.migrate import alembic_config, sync_readonly_grants

db_app = typer.Typer(
    help="Database migrations (Alembic, see docs/migrations.md).", no_args_is_help=True
)


@db_app.command()
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the SQL instead of running it.")
    ] = False,
) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    settings = get_settings()
    command.upgrade(alembic_config(settings), revision, sql=sql)
    if not sql:
        sync_readonly_grants(settings)


@db_app.command()
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or a revision id.")],
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the SQL instead of running it.")
    ] = False,
) -> None:
    """Roll back migrations down to REVISION."""
    command.downgrade(alembic_config(get_settings()), revision, sql=sql)


@db_app.command()
def current() -> None:
    """Show the revision the database is at."""
    command.current(alembic_config(get_settings()), verbose=True)


@db_app.command()
def history() -> None:
    """List every revision, newest first."""
    command.history(alembic_config(get_settings()), verbose=True, indicate_current=True)


@db_app.command()
def revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision does.")],
    autogenerate: Annotated[
        bool, typer.Option(help="Diff core/models.py against the database.")
    ] = True,
) -> None:
    """Create a new revision file in migrations/versions."""
    command.revision(alembic_config(get_settings()), message=message, autogenerate=autogenerate)


@db_app.command()
def psql(
    command_sql: Annotated[
        str | None, typer.Option("-c", "--command", help="Run one SQL command and exit.")
    ] = None,
    readonly: Annotated[
        bool, typer.Option("--readonly", help="Connect as the read-only role.")
    ] = False,
) -> None:
    """Open psql on the application database (credentials from the settings)."""
    import os
    import shutil

    from sqlalchemy.engine import make_url

    settings = get_settings()
    url = make_url(settings.readonly_db_url if readonly else settings.db_url)
    binary = shutil.which("psql")
    if binary is None:
        typer.echo("psql not found: install the PostgreSQL client (Debian: postgresql-client)")
        raise typer.Exit(1)
    args = [binary, "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432)]
    args += ["-U", url.username or "", url.database or ""]
    if command_sql:
        args += ["-c", command_sql]
    os.execvpe(binary, args, {**os.environ, "PGPASSWORD": url.password or ""})  # noqa: S606
