"""``stride sweep``: the scheduled expiries and refunds (``cli/sweeper.py``), once for an
operator or for ever as the ``sweeper`` service of ``stride up``."""

from __future__ import annotations

import contextlib
import logging.config
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.sweeper import SweepName, run_once, selected, serve
from core.platform.config import get_settings
from core.platform.db import engine_for
from core.platform.observability import logging_dict_config, serve_metrics

console = Console()
err = Console(stderr=True)
log = logging.getLogger("stride.sweeper")


def sweep(
    once: Annotated[
        bool, typer.Option("--once", help="One pass of each sweep, a summary, then exit.")
    ] = False,
    only: Annotated[
        list[SweepName] | None,
        typer.Option("--only", help="Run only this sweep (repeat the option for several)."),
    ] = None,
    heartbeat_file: Annotated[
        Path | None,
        typer.Option(help="Written after every round (the supervisor's readiness probe)."),
    ] = None,
) -> None:
    """Release unpaid purchase holds, expire offered gifts and incomplete uploads, refund
    paid grants whose items could not be granted; each on its own interval
    (STRIDE_SWEEP_*_INTERVAL_S) until SIGTERM or Ctrl-C, or once with --once.

    Safe beside other sweepers and the API: every batch locks its rows with SKIP LOCKED."""
    settings = get_settings()
    engine = engine_for(settings.db_url, pool_size=2)
    sweeps = selected(only)
    if once:
        try:
            results = run_once(engine, settings, sweeps)
        except Exception as exc:
            err.print(f"[bold red]error:[/] the sweep failed: {exc}")
            err.print("is PostgreSQL up and migrated? (`stride status`, `stride db upgrade`)")
            raise typer.Exit(1) from None
        table = Table("sweep", "rows changed", "batches")
        for r in results:
            table.add_row(r.sweep.value, str(r.rows), str(r.batches))
        console.print(table)
        return
    logging.config.dictConfig(logging_dict_config(settings.log_format))
    if not serve_metrics(settings.metrics_host, settings.sweeper_metrics_port):
        log.warning("metrics port %d is taken; no /metrics", settings.sweeper_metrics_port)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    log.info("sweeping %s", ", ".join(s.name.value for s in sweeps))
    with contextlib.suppress(KeyboardInterrupt):
        serve(engine, settings, sweeps, stopping, heartbeat_file)
