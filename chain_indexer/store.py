"""The indexer's state in PostgreSQL: cursor, block window, window logs and the outbox.

Why an outbox: the cursor and the records it stands for must move together. Each step
writes, in ONE transaction, the blocks it indexed (or the rollback to the common ancestor),
the records to publish (retractions first, then the new canonical logs) into
``chain_outbox`` and the new cursor. The outbox is then published in id order and each
record deleted once the broker acknowledged it. A ``kill -9`` before the commit redoes the
step from the old cursor (nothing was published for it); after the commit, the records
still in the outbox are published again on restart (a duplicate, which the projections'
idempotency key absorbs). No record is published that the database does not know about, so
a log is never left without its retraction after a reorg.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from core.chain.contracts import ChainLog
from core.chain.reorg import BlockRef
from core.platform.db import json_rows


@dataclass(frozen=True)
class ChainState:
    indexed_block: int | None
    window: list[BlockRef]  # newest first

    @property
    def tip(self) -> BlockRef | None:
        return self.window[0] if self.window else None


def load_state(engine: Engine, chain_id: int) -> ChainState:
    with engine.connect() as conn:
        indexed = conn.execute(
            text("SELECT indexed_block FROM chain_cursors WHERE chain_id = :c"), {"c": chain_id}
        ).scalar()
        rows = conn.execute(
            text(
                "SELECT number, hash, parent_hash, timestamp FROM chain_blocks "
                "WHERE chain_id = :c ORDER BY number DESC"
            ),
            {"c": chain_id},
        ).all()
    return ChainState(indexed, [BlockRef(*row) for row in rows])


def _ensure_cursor(conn: Connection, chain_id: int) -> None:
    conn.execute(
        text("INSERT INTO chain_cursors (chain_id) VALUES (:c) ON CONFLICT DO NOTHING"),
        {"c": chain_id},
    )


def _enqueue(
    conn: Connection, chain_id: int, records: Sequence[ChainLog], payloads: Sequence[str] = ()
) -> None:
    """Queue ``records`` in order (their JSON in ``payloads`` when already rendered)."""
    if not records:
        return
    payloads = payloads or [r.model_dump_json() for r in records]
    conn.execute(
        text(
            "INSERT INTO chain_outbox (chain_id, key, payload) "
            "SELECT :c, r.key, r.payload "
            "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
            "AS r(n bigint, key text, payload text) ORDER BY r.n"
        ),
        {
            "c": chain_id,
            **json_rows(
                {"n": n, "key": r.key.decode(), "payload": payload}
                for n, (r, payload) in enumerate(zip(records, payloads, strict=True))
            ),
        },
    )


def commit_forward(
    engine: Engine,
    chain_id: int,
    headers: Sequence[BlockRef],
    records: Sequence[ChainLog],
    *,
    keep_from: int,
) -> None:
    """Blocks ``headers`` indexed with their ``records``: window, outbox and cursor in one
    transaction; blocks below ``keep_from`` leave the window (final)."""
    payloads = [r.model_dump_json() for r in records]
    with engine.begin() as conn:
        _ensure_cursor(conn, chain_id)
        conn.execute(
            text(
                "INSERT INTO chain_blocks (chain_id, number, hash, parent_hash, timestamp) "
                "SELECT :c, r.number, r.hash, r.parent_hash, r.timestamp "
                "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
                "AS r(number bigint, hash text, parent_hash text, timestamp bigint)"
            ),
            {
                "c": chain_id,
                **json_rows(
                    {
                        "number": h.number,
                        "hash": h.hash,
                        "parent_hash": h.parent_hash,
                        "timestamp": h.timestamp,
                    }
                    for h in headers
                ),
            },
        )
        if records:
            conn.execute(
                text(
                    "INSERT INTO chain_window_logs "
                    "(chain_id, block_hash, log_index, block_number, payload) "
                    "SELECT :c, r.block_hash, r.log_index, r.block_number, r.payload "
                    "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
                    "AS r(block_hash text, log_index int, block_number bigint, payload text)"
                ),
                {
                    "c": chain_id,
                    **json_rows(
                        {
                            "block_hash": r.block_hash,
                            "log_index": r.log_index,
                            "block_number": r.block_number,
                            "payload": payload,
                        }
                        for r, payload in zip(records, payloads, strict=True)
                    ),
                },
            )
        _enqueue(conn, chain_id, records, payloads)
        params = {"c": chain_id, "keep": keep_from}
        conn.execute(
            text("DELETE FROM chain_blocks WHERE chain_id = :c AND number < :keep"), params
        )
        conn.execute(
            text("DELETE FROM chain_window_logs WHERE chain_id = :c AND block_number < :keep"),
            params,
        )
        conn.execute(
            text(
                "UPDATE chain_cursors SET indexed_block = :b, last_error = NULL, "
                "updated_at = now() WHERE chain_id = :c"
            ),
            {"c": chain_id, "b": headers[-1].number},
        )


def commit_rollback(engine: Engine, chain_id: int, ancestor: int) -> int:
    """Roll the window back to block ``ancestor``: the logs published for the orphaned
    blocks go to the outbox as retractions (newest first); returns how many."""
    with engine.begin() as conn:
        deleted = conn.execute(
            text(
                "DELETE FROM chain_window_logs WHERE chain_id = :c AND block_number > :a "
                "RETURNING block_number, log_index, payload"
            ),
            {"c": chain_id, "a": ancestor},
        ).all()
        payloads = sorted(deleted, key=lambda row: (row[0], row[1]), reverse=True)
        retractions = [ChainLog.model_validate_json(p).retraction() for _, _, p in payloads]
        _enqueue(conn, chain_id, retractions)
        conn.execute(
            text("DELETE FROM chain_blocks WHERE chain_id = :c AND number > :a"),
            {"c": chain_id, "a": ancestor},
        )
        conn.execute(
            text(
                "UPDATE chain_cursors SET indexed_block = :a, updated_at = now() "
                "WHERE chain_id = :c"
            ),
            {"c": chain_id, "a": ancestor},
        )
    return len(retractions)


def pending_outbox(engine: Engine, limit: int) -> list[tuple[int, str, str]]:
    """The oldest records still to publish: (id, key, payload)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, key, payload FROM chain_outbox ORDER BY id LIMIT :n"), {"n": limit}
        ).all()
    return [(int(i), str(k), str(p)) for i, k, p in rows]


def delete_outbox(engine: Engine, up_to_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM chain_outbox WHERE id <= :i"), {"i": up_to_id})


def note_head(engine: Engine, chain_id: int, head: int, now: datetime) -> datetime:
    """Record the node's head; returns since when it has been at this height."""
    with engine.begin() as conn:
        _ensure_cursor(conn, chain_id)
        changed = conn.execute(
            text(
                "UPDATE chain_cursors SET head = :h, "
                "head_changed_at = CASE WHEN head IS DISTINCT FROM :h OR head_changed_at IS NULL "
                "THEN :now ELSE head_changed_at END "
                "WHERE chain_id = :c RETURNING head_changed_at"
            ),
            {"c": chain_id, "h": head, "now": now},
        ).scalar_one()
    return changed


def record_error(engine: Engine, chain_id: int, error: str | None) -> None:
    with engine.begin() as conn:
        _ensure_cursor(conn, chain_id)
        conn.execute(
            text(
                "UPDATE chain_cursors SET last_error = :e, "
                "last_error_at = CASE WHEN CAST(:e AS text) IS NULL THEN last_error_at "
                "ELSE now() END "
                "WHERE chain_id = :c"
            ),
            {"c": chain_id, "e": error},
        )
