"""``stride chain``: the chain indexer's and the chain writer's state per chain, and a
reindex from scratch."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.chain.status import chain_statuses, forget_chain
from core.platform.config import get_settings
from core.platform.db import engine_for
from core.rewards import store

chain_app = typer.Typer(
    help="The chain indexer and writer: status per chain, reindex.", no_args_is_help=True
)
console = Console()


@chain_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Per chain: the indexer (head, indexed block, lag, stalled head, last error) and the
    chain writer (reward commands per status, sender nonces and repairs, transactions in
    flight, the latest failures with their reasons).

    Exits 1 when a chain has an error or a stalled head, or a reward command failed."""
    settings = get_settings()
    engine = engine_for(settings.db_url)
    with engine.connect() as conn:
        rows = chain_statuses(conn, datetime.now(UTC), settings.indexer_stall_after_s)
    writer = store.writer_status(engine)
    configured = set(settings.indexed_chains)
    if as_json:
        indexer = [
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
        typer.echo(json.dumps({"indexer": indexer, "writer": asdict(writer)}, default=str))
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
        _print_writer(writer)
    if any(s.last_error or s.stalled_s for s in rows) or writer.commands.get("failed"):
        raise typer.Exit(1)


def _print_writer(writer: store.WriterStatus) -> None:
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(writer.commands.items()))
    console.print(f"reward commands: {counts or 'none'}")
    senders = Table("chain", "writer sender", "next nonce", "chain latest/pending", "last repair")
    for s in writer.senders:
        senders.add_row(
            str(s["chain_id"]),
            s["sender"],
            str(s["next_nonce"]),
            f"{s['chain_latest_nonce']}/{s['chain_pending_nonce']}",
            s["last_repair"] or "",
        )
    console.print(senders)
    if writer.live_txs:
        live = Table("chain", "tx status", "txs", "max fee bumps", "oldest broadcast block")
        for t in writer.live_txs:
            live.add_row(
                str(t["chain_id"]),
                t["status"],
                str(t["txs"]),
                str(t["max_bumps"]),
                str(t["oldest_broadcast_block"]),
            )
        console.print(live)
    if writer.failures:
        failed = Table("failed command", "action", "game", "player", "reason")
        for f in writer.failures:
            failed.add_row(
                str(f["command_id"]), f["action"], f["game_id"], f["player_id"], f["reason"] or ""
            )
        console.print(failed)
        console.print("retry with `stride rewards retry COMMAND_ID` (or --all-failed)")


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
