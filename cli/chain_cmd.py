"""``stride chain``: the chain indexer's state per chain, and a reindex from scratch."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.chain.status import chain_statuses, forget_chain
from core.platform.config import get_settings
from core.platform.db import engine_for

chain_app = typer.Typer(help="The chain indexer: status per chain, reindex.", no_args_is_help=True)
console = Console()


@chain_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Per chain: the node's head, the indexed block, the lag, a stalled head, the last error.

    Exits 1 when a chain has an error or a stalled head."""
    settings = get_settings()
    with engine_for(settings.db_url).connect() as conn:
        rows = chain_statuses(conn, datetime.now(UTC), settings.indexer_stall_after_s)
    configured = set(settings.indexed_chains)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "chain_id": s.chain_id,
                        "head": s.head,
                        "indexed_block": s.indexed_block,
                        "projected_block": s.projected_block,
                        "lag": s.lag,
                        "stalled_s": s.stalled_s,
                        "outbox": s.outbox,
                        "last_error": s.last_error,
                    }
                    for s in rows
                ]
            )
        )
    else:
        table = Table("chain", "head", "indexed", "lag", "projected", "outbox", "problem")
        for s in rows:
            problem = s.last_error or (f"head stalled {s.stalled_s:.0f}s" if s.stalled_s else "")
            table.add_row(
                str(s.chain_id),
                str(s.head),
                str(s.indexed_block),
                str(s.lag),
                str(s.projected_block),
                str(s.outbox),
                problem,
            )
        for chain_id in sorted(configured - {s.chain_id for s in rows}):
            table.add_row(str(chain_id), "-", "-", "-", "-", "-", "not indexed yet")
        console.print(table)
    if any(s.last_error or s.stalled_s for s in rows):
        raise typer.Exit(1)


@chain_app.command("reset")
def reset(
    chain_id: Annotated[int, typer.Argument(help="The chain to reindex from the start block.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Forget a chain's indexer state and projections (stop the indexer and worker first)."""
    if not yes:
        typer.confirm(f"delete the indexer state and projections of chain {chain_id}?", abort=True)
    forget_chain(engine_for(get_settings().db_url), chain_id)
    console.print(f"chain {chain_id} forgotten; `stride up indexer worker` reindexes it")
