"""What the indexer and the projections say about each chain: head, indexed block, lag,
stall, last error, records still in the outbox, the block the projections reflect. Read by
``stride chain status`` and every answer of the chain API; ``forget_chain`` starts a chain
over (a reindex)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine


@dataclass(frozen=True)
class ChainStatus:
    chain_id: int
    head: int | None
    indexed_block: int | None
    projected_block: int | None  # highest block whose logs the projections applied
    head_changed_at: datetime | None
    stalled_s: float | None  # how long the head has not moved, past the stall threshold
    last_error: str | None
    outbox: int  # records committed but not yet acknowledged by the broker

    @property
    def lag(self) -> int | None:
        """Blocks between the node's head and what the indexer has published."""
        if self.head is None:
            return None
        return self.head - (self.indexed_block if self.indexed_block is not None else -1)


_QUERY = (
    "SELECT c.chain_id, c.head, c.indexed_block, p.block_number, c.head_changed_at, "
    "c.last_error, (SELECT count(*) FROM chain_outbox o WHERE o.chain_id = c.chain_id) "
    "FROM chain_cursors c LEFT JOIN chain_projection_heads p USING (chain_id) "
)


def _status(row: tuple, now: datetime, stall_after_s: float) -> ChainStatus:
    chain_id, head, indexed, projected, changed, error, outbox = row
    stalled = None
    if changed is not None:
        age = (now - changed).total_seconds()
        stalled = age if age > stall_after_s else None
    return ChainStatus(chain_id, head, indexed, projected, changed, stalled, error, int(outbox))


def chain_statuses(conn: Connection, now: datetime, stall_after_s: float) -> list[ChainStatus]:
    rows = conn.execute(text(_QUERY + "ORDER BY c.chain_id")).all()
    return [_status(tuple(r), now, stall_after_s) for r in rows]


def chain_status(
    conn: Connection, chain_id: int, now: datetime, stall_after_s: float
) -> ChainStatus | None:
    row = conn.execute(text(_QUERY + "WHERE c.chain_id = :c"), {"c": chain_id}).first()
    return _status(tuple(row), now, stall_after_s) if row else None


def forget_chain(engine: Engine, chain_id: int) -> None:
    """Delete a chain's indexer state and projections: the indexer reindexes it from
    ``STRIDE_INDEXER_START_BLOCK``. Stop the indexer and the worker first."""
    with engine.begin() as conn:
        for table in (
            "chain_blocks",
            "chain_window_logs",
            "chain_outbox",
            "chain_cursors",
            "chain_logs",
            "token_balances",
            "nft_balances",
            "chain_projection_heads",
        ):
            conn.execute(text(f"DELETE FROM {table} WHERE chain_id = :c"), {"c": chain_id})  # noqa: S608
