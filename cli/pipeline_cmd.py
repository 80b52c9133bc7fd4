"""``stride pipeline``: materialize the lakehouse headless (silver → gold → warehouse)."""

from __future__ import annotations

import os
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.platform.config import get_settings

if TYPE_CHECKING:
    from dagster_project.run import DayOutcome

pipeline_app = typer.Typer(
    help="The lakehouse pipeline (Dagster assets over Spark Connect).", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _parse_day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2026-11-21") from None


@pipeline_app.command("run")
def run(
    day: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="Day to (re)build, YYYY-MM-DD. Default: every day that has bronze data.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Materialize silver, gold (with blocking checks) and the warehouse, one day at a time."""
    from core.lake.bronze import BRONZE_TABLES, days_written_since
    from spark_jobs.session import spark_problem, stop_sessions

    settings = get_settings()
    only = _parse_day(day)
    problem = spark_problem(settings.spark_host, settings.spark_port)
    if problem and settings.is_local:
        _fail(f"{problem}; start it with `stride up spark`")
    from dagster_project.assets import daily

    first = settings.lake_first_day.isoformat()
    if only is not None:
        if not daily.has_partition_key(only.isoformat()):
            _fail(
                f"{only} is not a partition: days run from STRIDE_LAKE_FIRST_DAY ({first}) to today"
            )
        days = [only]
    else:
        found: set[date] = set()
        for table in BRONZE_TABLES:
            found |= days_written_since(settings.lake_root, table, -1)[1]
        outside = sorted(d for d in found if not daily.has_partition_key(d.isoformat()))
        if outside:
            console.print(
                f"skipping {len(outside)} bronze day(s) outside the partitions ({first} … "
                f"today; see STRIDE_LAKE_FIRST_DAY): {', '.join(map(str, outside[:10]))}"
            )
        days = sorted(found - set(outside))
        if not days:
            console.print(f"no bronze data in {settings.lake_root} to build")
            return

    home = settings.state_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DAGSTER_HOME", str(home))  # runs show up in the Dagster UI
    import dagster as dg

    from dagster_project.resources import current_resources
    from dagster_project.run import materialize_day

    resources = current_resources()
    instance = dg.DagsterInstance.get()
    outcomes: list[DayOutcome] = []
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("lakehouse", total=len(days))
        try:
            for current in days:
                progress.update(task, description=f"building {current.isoformat()}")
                outcomes.append(materialize_day(current, resources, instance, log_level="WARNING"))
                progress.advance(task)
        finally:
            stop_sessions()
    _print_outcomes(outcomes)
    if not all(o.success and not o.failed_checks for o in outcomes):
        raise typer.Exit(1)


def _print_outcomes(outcomes: list[DayOutcome]) -> None:
    table = Table(title=f"lakehouse run {datetime.now():%Y-%m-%d %H:%M}")
    for column in ("day", "result", "rows (silver / gold / warehouse)", "failed checks", "skipped"):
        table.add_column(column)
    for o in outcomes:
        ok = o.success and not o.failed_checks
        rows = " / ".join(
            str(sum(v for k, v in o.rows.items() if k.startswith(layer)))
            for layer in ("silver", "gold", "warehouse")
        )
        table.add_row(
            o.day.isoformat(),
            "[green]ok[/]" if ok else "[red]blocked[/]",
            rows,
            ", ".join(o.failed_checks) or "-",
            ", ".join(o.skipped) or "-",
        )
    console.print(table)
