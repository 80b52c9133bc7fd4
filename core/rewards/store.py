"""Data access of the chain writer: every read and write of ``reward_commands`` statuses,
``reward_executions``, ``chain_txs``, ``chain_senders`` and ``burn_authorizations``.

Every write that matters for exactly-once happens in PostgreSQL *before* the chain sees it:
a transaction is signed, recorded with its nonce and the commands it carries, and only then
broadcast; after a crash the writer broadcasts again what it recorded (same bytes, same
hash), so nothing broadcast is ever unknown to the database. Set-based SQL throughout: a
pass moves thousands of commands in a handful of statements.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, text

from core.content.inventory import settle_burns
from core.platform.db import json_rows
from core.rewards.batching import MintEntry, to_wei
from core.rewards.commands import RewardAction, RewardStatus
from core.rewards.fees import Fees
from core.rewards.models import TxKind, TxStatus
from core.rewards.states import resolution

# ---- resolution: pending -> awaiting_wallet | needs_authorization | queued ----------------

_PICK_PENDING = text(
    """
    WITH picked AS (
        SELECT command_id, action, game_id, player_id, amount
        FROM reward_commands
        WHERE status = 'pending'
        ORDER BY issued_at
        LIMIT :n
        FOR UPDATE SKIP LOCKED
    )
    SELECT p.command_id, p.action, p.game_id, p.player_id, p.amount,
        coalesce(payer.owner, w.address) AS wallet, a.owner AS authorized_by
    FROM picked p
    LEFT JOIN player_links l ON l.game_id = p.game_id AND l.player_id = p.player_id
    LEFT JOIN user_wallets w ON w.user_id = l.user_id AND w.is_primary
    LEFT JOIN burn_authorizations a ON a.command_id = p.command_id AND a.chain_id = :chain
    -- a refund mint goes back to the wallet that signed its grant's burn, not the primary
    LEFT JOIN grants g ON g.refund_command_id = p.command_id
    LEFT JOIN burn_authorizations payer
        ON payer.command_id = g.reward_command_id AND payer.chain_id = :chain
    """
)

_SET_STATUS = text(
    """
    UPDATE reward_commands c SET status = v.status, updated_at = clock_timestamp()
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(command_id uuid, status text)
    WHERE c.command_id = v.command_id
    """
)

_UPSERT_EXECUTIONS = text(
    """
    INSERT INTO reward_executions (command_id, chain_id, recipient, amount_wei, reason,
        updated_at)
    SELECT v.command_id, :chain, v.recipient, v.amount_wei, v.reason, clock_timestamp()
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS v(command_id uuid, recipient text, amount_wei numeric, reason text)
    ON CONFLICT (command_id) DO UPDATE SET recipient = EXCLUDED.recipient,
        reason = EXCLUDED.reason, chain_id = EXCLUDED.chain_id, chain_tx_id = NULL,
        updated_at = EXCLUDED.updated_at
    """
)


def resolve_pending(engine: Engine, chain_id: int, limit: int) -> dict[RewardStatus, int]:
    """Move up to ``limit`` pending commands on (player → user → primary wallet; a refund
    mint → the wallet that signed the burn it refunds; a burn needs its permit); how many
    went where."""
    counts: dict[RewardStatus, int] = {}
    with engine.begin() as conn:
        rows = conn.execute(_PICK_PENDING, {"n": limit, "chain": chain_id}).mappings().all()
        if not rows:
            return counts
        statuses: list[dict[str, Any]] = []
        executions: list[dict[str, Any]] = []
        for row in rows:
            status, recipient, reason = resolution(
                row["command_id"],
                RewardAction(row["action"]),
                row["game_id"],
                row["player_id"],
                row["wallet"],
                row["authorized_by"],
            )
            try:
                amount_wei = to_wei(Decimal(row["amount"]))
            except ValueError as exc:
                status, recipient, reason = RewardStatus.failed, None, str(exc)
                amount_wei = 0
            counts[status] = counts.get(status, 0) + 1
            statuses.append({"command_id": str(row["command_id"]), "status": status.value})
            executions.append(
                {
                    "command_id": str(row["command_id"]),
                    "recipient": recipient,
                    "amount_wei": str(amount_wei),
                    "reason": reason,
                }
            )
        conn.execute(_SET_STATUS, json_rows(statuses))
        conn.execute(_UPSERT_EXECUTIONS, {"chain": chain_id, **json_rows(executions)})
    return counts


_RELEASE = text(
    """
    UPDATE reward_commands c SET status = 'pending', updated_at = clock_timestamp()
    WHERE (c.status = 'awaiting_wallet' AND EXISTS (
            SELECT 1 FROM player_links l JOIN user_wallets w
                ON w.user_id = l.user_id AND w.is_primary
            WHERE l.game_id = c.game_id AND l.player_id = c.player_id))
       OR (c.status = 'needs_authorization' AND EXISTS (
            SELECT 1 FROM burn_authorizations a WHERE a.command_id = c.command_id))
    """
)


def release_waiting(conn: Connection) -> int:
    """Commands waiting for a wallet that now has one (or a burn whose permit arrived) go
    back to pending. Called by the writer each pass and by the wallet link itself."""
    return conn.execute(_RELEASE).rowcount


# ---- the sender and its nonces ---------------------------------------------------------


def lock_sender(conn: Connection, chain_id: int, sender: str) -> int | None:
    """The next local nonce, row-locked until the transaction ends (None: never used)."""
    return conn.execute(
        text("SELECT next_nonce FROM chain_senders WHERE chain_id = :c AND sender = :s FOR UPDATE"),
        {"c": chain_id, "s": sender},
    ).scalar()


def next_nonce(engine: Engine, chain_id: int, sender: str) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT next_nonce FROM chain_senders WHERE chain_id = :c AND sender = :s"),
            {"c": chain_id, "s": sender},
        ).scalar()


def set_sender(
    conn: Connection,
    chain_id: int,
    sender: str,
    next_nonce: int,
    *,
    chain_latest: int | None = None,
    chain_pending: int | None = None,
    repair: str | None = None,
) -> None:
    reconciled = chain_latest is not None
    conn.execute(
        text(
            """
            INSERT INTO chain_senders (chain_id, sender, next_nonce, chain_latest_nonce,
                chain_pending_nonce, reconciled_at, last_repair, updated_at)
            VALUES (:c, :s, :n, :latest, :pending,
                CASE WHEN :reconciled THEN clock_timestamp() END, :repair, clock_timestamp())
            ON CONFLICT (chain_id, sender) DO UPDATE SET next_nonce = EXCLUDED.next_nonce,
                chain_latest_nonce = COALESCE(EXCLUDED.chain_latest_nonce,
                    chain_senders.chain_latest_nonce),
                chain_pending_nonce = COALESCE(EXCLUDED.chain_pending_nonce,
                    chain_senders.chain_pending_nonce),
                reconciled_at = COALESCE(EXCLUDED.reconciled_at, chain_senders.reconciled_at),
                last_repair = COALESCE(EXCLUDED.last_repair, chain_senders.last_repair),
                updated_at = EXCLUDED.updated_at
            """
        ),
        {
            "c": chain_id,
            "s": sender,
            "n": next_nonce,
            "latest": chain_latest,
            "pending": chain_pending,
            "reconciled": reconciled,
            "repair": repair,
        },
    )


# ---- queued commands -> signed transactions ----------------------------------------------

_QUEUED = text(
    """
    SELECT c.command_id, c.action, e.recipient, e.amount_wei,
        a.deadline, a.v, a.r, a.s
    FROM reward_commands c
    JOIN reward_executions e ON e.command_id = c.command_id AND e.chain_id = :chain
    LEFT JOIN burn_authorizations a ON a.command_id = c.command_id
    WHERE c.status = 'queued' AND c.action = :action
    ORDER BY c.issued_at
    LIMIT :n
    FOR UPDATE OF c SKIP LOCKED
    """
)


def queued_mints(conn: Connection, chain_id: int, limit: int) -> list[MintEntry]:
    rows = conn.execute(_QUEUED, {"chain": chain_id, "action": "mint", "n": limit}).mappings()
    return [MintEntry(r["command_id"], r["recipient"], int(r["amount_wei"])) for r in rows]


@dataclass(frozen=True)
class QueuedBurn:
    command_id: uuid.UUID
    holder: str
    amount_wei: int
    deadline: int
    v: int
    r: str
    s: str


def queued_burns(conn: Connection, chain_id: int, limit: int) -> list[QueuedBurn]:
    rows = conn.execute(_QUEUED, {"chain": chain_id, "action": "burn", "n": limit}).mappings()
    return [
        QueuedBurn(
            r["command_id"],
            r["recipient"],
            int(r["amount_wei"]),
            int(r["deadline"]),
            int(r["v"]),
            r["r"],
            r["s"],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class NewTx:
    chain_id: int
    sender: str
    nonce: int
    kind: TxKind
    to_address: str
    gas_limit: int
    fees: Fees
    tx_hash: str
    raw_tx: bytes
    command_ids: Sequence[uuid.UUID]


def record_tx(conn: Connection, tx: NewTx) -> int:
    """Insert a signed transaction and move its commands to ``submitted`` (one statement
    each); the caller's transaction also advances the sender's nonce."""
    tx_id = conn.execute(
        text(
            """
            INSERT INTO chain_txs (chain_id, sender, nonce, kind, status, to_address,
                gas_limit, max_fee_per_gas, max_priority_fee_per_gas, tx_hash, tx_hashes,
                raw_tx, command_ids)
            VALUES (:chain, :sender, :nonce, :kind, 'signed', :to, :gas, :max_fee, :tip,
                :hash, ARRAY[CAST(:hash AS varchar)], :raw, CAST(:ids AS uuid[]))
            RETURNING id
            """
        ),
        {
            "chain": tx.chain_id,
            "sender": tx.sender,
            "nonce": tx.nonce,
            "kind": tx.kind.value,
            "to": tx.to_address,
            "gas": tx.gas_limit,
            "max_fee": tx.fees.max_fee_per_gas,
            "tip": tx.fees.max_priority_fee_per_gas,
            "hash": tx.tx_hash,
            "raw": tx.raw_tx,
            "ids": [str(i) for i in tx.command_ids],
        },
    ).scalar_one()
    conn.execute(
        text(
            """
            UPDATE reward_commands SET status = 'submitted', updated_at = clock_timestamp()
            WHERE command_id = ANY(CAST(:ids AS uuid[]))
            """
        ),
        {"ids": [str(i) for i in tx.command_ids]},
    )
    conn.execute(
        text(
            """
            UPDATE reward_executions SET chain_tx_id = :tx, attempts = attempts + 1,
                reason = NULL, updated_at = clock_timestamp()
            WHERE command_id = ANY(CAST(:ids AS uuid[]))
            """
        ),
        {"tx": tx_id, "ids": [str(i) for i in tx.command_ids]},
    )
    return int(tx_id)


# ---- live transactions -------------------------------------------------------------------


@dataclass(frozen=True)
class LiveTx:
    id: int
    nonce: int
    kind: TxKind
    status: TxStatus
    to_address: str
    gas_limit: int
    fees: Fees
    tx_hash: str
    tx_hashes: list[str]
    raw_tx: bytes
    command_ids: list[uuid.UUID]
    broadcast_block: int | None
    mined_block: int | None
    mined_block_hash: str | None
    bumps: int


def live_txs(engine: Engine | Connection, chain_id: int, sender: str) -> list[LiveTx]:
    """Every transaction of the sender that is not finished, in nonce order."""
    sql = text(
        """
        SELECT id, nonce, kind, status, to_address, gas_limit, max_fee_per_gas,
            max_priority_fee_per_gas, tx_hash, tx_hashes, raw_tx, command_ids,
            broadcast_block, mined_block, mined_block_hash, bumps
        FROM chain_txs
        WHERE chain_id = :c AND sender = :s AND status IN ('signed', 'submitted', 'mined')
        ORDER BY nonce
        """
    )
    params = {"c": chain_id, "s": sender}
    if isinstance(engine, Engine):
        with engine.connect() as conn:
            rows = conn.execute(sql, params).mappings().all()
    else:
        rows = engine.execute(sql, params).mappings().all()
    return [
        LiveTx(
            id=r["id"],
            nonce=r["nonce"],
            kind=TxKind(r["kind"]),
            status=TxStatus(r["status"]),
            to_address=r["to_address"],
            gas_limit=r["gas_limit"],
            fees=Fees(int(r["max_fee_per_gas"]), int(r["max_priority_fee_per_gas"])),
            tx_hash=r["tx_hash"],
            tx_hashes=list(r["tx_hashes"]),
            raw_tx=bytes(r["raw_tx"]),
            command_ids=list(r["command_ids"]),
            broadcast_block=r["broadcast_block"],
            mined_block=r["mined_block"],
            mined_block_hash=r["mined_block_hash"],
            bumps=r["bumps"],
        )
        for r in rows
    ]


def _update_tx(conn: Connection, tx_id: int, **values: Any) -> None:
    columns = ", ".join(f"{k} = :{k}" for k in values)  # keys are ours, values are bound
    conn.execute(
        text(f"UPDATE chain_txs SET {columns}, updated_at = clock_timestamp() WHERE id = :id"),  # noqa: S608
        {"id": tx_id, **values},
    )


def mark_broadcast(engine: Engine, tx_id: int, head: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                UPDATE chain_txs SET status = 'submitted', broadcast_block = :head,
                    updated_at = clock_timestamp()
                WHERE id = :id AND status = 'signed'
                """
            ),
            {"id": tx_id, "head": head},
        )


def mark_mined(
    engine: Engine,
    tx_id: int,
    *,
    block: int,
    block_hash: str,
    tx_hash: str,
    gas_used: int,
    fee_paid_wei: int,
) -> None:
    with engine.begin() as conn:
        _update_tx(
            conn,
            tx_id,
            status=TxStatus.mined.value,
            mined_block=block,
            mined_block_hash=block_hash,
            mined_tx_hash=tx_hash,
            gas_used=gas_used,
            fee_paid_wei=fee_paid_wei,
        )


def mark_unmined(engine: Engine, tx_id: int) -> None:
    """Its block left the canonical chain (a reorg): it is waiting again."""
    with engine.begin() as conn:
        _update_tx(
            conn,
            tx_id,
            status=TxStatus.submitted.value,
            mined_block=None,
            mined_block_hash=None,
            mined_tx_hash=None,
            failure_reason="its block was reorganized away; broadcast again",
        )


def record_replacement(
    engine: Engine, tx_id: int, *, fees: Fees, tx_hash: str, raw_tx: bytes, head: int
) -> None:
    """The same nonce re-signed with higher fees: the old hash stays in ``tx_hashes``."""
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                UPDATE chain_txs SET max_fee_per_gas = :max_fee,
                    max_priority_fee_per_gas = :tip, tx_hash = :hash,
                    tx_hashes = array_append(tx_hashes, CAST(:hash AS varchar)),
                    raw_tx = :raw, bumps = bumps + 1, broadcast_block = :head,
                    updated_at = clock_timestamp()
                WHERE id = :id
                """
            ),
            {
                "id": tx_id,
                "max_fee": fees.max_fee_per_gas,
                "tip": fees.max_priority_fee_per_gas,
                "hash": tx_hash,
                "raw": raw_tx,
                "head": head,
            },
        )


def finish_tx(
    engine: Engine,
    tx_id: int,
    *,
    confirmed: bool,
    reason: str | None = None,
) -> None:
    """Confirmed: the tx and every command it carries (paid now or skipped because an
    earlier transaction paid it). Failed: the same, with the decoded reason."""
    status = RewardStatus.confirmed if confirmed else RewardStatus.failed
    with engine.begin() as conn:
        ids = conn.execute(
            text(
                """
                UPDATE chain_txs SET status = :status, failure_reason = :reason,
                    updated_at = clock_timestamp()
                WHERE id = :id AND status IN ('signed', 'submitted', 'mined')
                RETURNING command_ids
                """
            ),
            {"id": tx_id, "status": status.value, "reason": reason},
        ).scalar()
        if ids is None:
            return
        _finish_commands(conn, [str(i) for i in ids], status, reason, tx_id)


def _finish_commands(
    conn: Connection, ids: list[str], status: RewardStatus, reason: str | None, tx_id: int
) -> None:
    conn.execute(
        text(
            """
            UPDATE reward_commands SET status = :status, updated_at = clock_timestamp()
            WHERE command_id = ANY(CAST(:ids AS uuid[])) AND status = 'submitted'
            """
        ),
        {"ids": ids, "status": status.value},
    )
    conn.execute(
        text(
            """
            UPDATE reward_executions SET reason = :reason, updated_at = clock_timestamp()
            WHERE command_id = ANY(CAST(:ids AS uuid[])) AND chain_tx_id = :tx
            """
        ),
        {"ids": ids, "reason": reason, "tx": tx_id},
    )
    # The one call into another domain: purchases held for these burns are granted (or
    # released) in this same transaction, so a confirmed burn and its items commit together.
    settle_burns(conn, ids, datetime.now(UTC))


def drop_txs(conn: Connection, tx_ids: Sequence[int], reason: str) -> int:
    """Transactions whose nonce went to another transaction: their commands are queued
    again for a new one (if one of them did get mined after all, the contract skips the
    commands it already paid)."""
    if not tx_ids:
        return 0
    ids = conn.execute(
        text(
            """
            UPDATE chain_txs SET status = 'dropped', failure_reason = :reason,
                updated_at = clock_timestamp()
            WHERE id = ANY(:tx_ids) AND status IN ('signed', 'submitted')
            RETURNING command_ids
            """
        ),
        {"tx_ids": list(tx_ids), "reason": reason},
    ).scalars()
    commands = [str(c) for row in ids for c in row]
    if commands:
        conn.execute(
            text(
                """
                UPDATE reward_commands SET status = 'queued', updated_at = clock_timestamp()
                WHERE command_id = ANY(CAST(:ids AS uuid[])) AND status = 'submitted'
                """
            ),
            {"ids": commands},
        )
        conn.execute(
            text(
                """
                UPDATE reward_executions SET chain_tx_id = NULL, reason = :reason,
                    updated_at = clock_timestamp()
                WHERE command_id = ANY(CAST(:ids AS uuid[]))
                """
            ),
            {"ids": commands, "reason": f"sent again: {reason}"},
        )
    return len(commands)


# ---- outcomes outbox ---------------------------------------------------------------------


def unpublished_outcomes(engine: Engine, chain_id: int, limit: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(
                    """
                    SELECT c.command_id, c.action, c.game_id, c.player_id, c.status,
                        e.reason, c.token, c.amount, e.chain_id, e.recipient AS wallet,
                        t.mined_tx_hash AS tx_hash, t.mined_block AS block_number,
                        c.source_event_id, c.updated_at AS decided_at
                    FROM reward_executions e
                    JOIN reward_commands c ON c.command_id = e.command_id
                    LEFT JOIN chain_txs t ON t.id = e.chain_tx_id
                    WHERE e.outcome_published_at IS NULL AND e.chain_id = :chain
                        AND c.status IN ('confirmed', 'failed')
                    ORDER BY c.updated_at
                    LIMIT :n
                    """
                ),
                {"chain": chain_id, "n": limit},
            ).mappings()
        ]


def mark_outcomes_published(engine: Engine, command_ids: Sequence[uuid.UUID]) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                UPDATE reward_executions SET outcome_published_at = clock_timestamp()
                WHERE command_id = ANY(CAST(:ids AS uuid[]))
                """
            ),
            {"ids": [str(i) for i in command_ids]},
        )


# ---- reads for the CLI, the exporter and the API -----------------------------------------


def status_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            r[0]: int(r[1])
            for r in conn.execute(
                text("SELECT status, count(*) FROM reward_commands GROUP BY status")
            )
        }


def retry(engine: Engine, command_ids: Sequence[uuid.UUID] | None, now: datetime) -> int:
    """Failed (or waiting) commands back to pending: all failed ones when ``command_ids``
    is None. A confirmed command is never retried."""
    where = (
        "status = 'failed'"
        if command_ids is None
        else (
            "status IN ('failed', 'awaiting_wallet', 'needs_authorization') "
            "AND command_id = ANY(CAST(:ids AS uuid[]))"
        )
    )
    with engine.begin() as conn:
        return conn.execute(
            text(
                f"UPDATE reward_commands SET status = 'pending', updated_at = :now WHERE {where}"  # noqa: S608
            ),
            {"now": now, "ids": [str(i) for i in command_ids or []]},
        ).rowcount


@dataclass(frozen=True)
class WriterStatus:
    """What ``stride chain status`` shows of the writer."""

    commands: dict[str, int]
    senders: list[dict[str, Any]]  # chain, sender, next nonce, last repair, reconciled at
    live_txs: list[dict[str, Any]]  # per chain and status: count, oldest broadcast block
    failures: list[dict[str, Any]]  # the latest failed commands with their reason


def writer_status(engine: Engine, failures: int = 5) -> WriterStatus:
    with engine.connect() as conn:
        senders = [
            dict(r)
            for r in conn.execute(
                text(
                    "SELECT chain_id, sender, next_nonce, chain_latest_nonce, "
                    "chain_pending_nonce, reconciled_at, last_repair FROM chain_senders "
                    "ORDER BY chain_id, sender"
                )
            ).mappings()
        ]
        live = [
            dict(r)
            for r in conn.execute(
                text(
                    "SELECT chain_id, status, count(*) AS txs, max(bumps) AS max_bumps, "
                    "min(broadcast_block) AS oldest_broadcast_block FROM chain_txs "
                    "WHERE status IN ('signed', 'submitted', 'mined') GROUP BY 1, 2 ORDER BY 1, 2"
                )
            ).mappings()
        ]
        failed = [
            dict(r)
            for r in conn.execute(
                text(
                    """
                    SELECT c.command_id, c.action, c.game_id, c.player_id, e.reason,
                        c.updated_at
                    FROM reward_commands c
                    LEFT JOIN reward_executions e USING (command_id)
                    WHERE c.status = 'failed'
                    ORDER BY c.updated_at DESC LIMIT :n
                    """
                ),
                {"n": failures},
            ).mappings()
        ]
    return WriterStatus(status_counts(engine), senders, live, failed)


def list_commands(
    engine: Engine,
    *,
    status: RewardStatus | None = None,
    game_id: str | None = None,
    player_id: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Reward commands, newest first, with where the writer has them."""
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(
                    """
                    SELECT c.command_id, c.action, c.status, c.game_id, c.player_id,
                        c.amount, c.token, c.source_event_id, c.issued_at, c.updated_at,
                        e.chain_id, e.recipient, e.reason, e.attempts, t.tx_hash,
                        t.mined_block, t.status AS tx_status
                    FROM reward_commands c
                    LEFT JOIN reward_executions e USING (command_id)
                    LEFT JOIN chain_txs t ON t.id = e.chain_tx_id
                    WHERE (CAST(:status AS text) IS NULL OR c.status = :status)
                        AND (CAST(:game AS text) IS NULL OR c.game_id = :game)
                        AND (CAST(:player AS text) IS NULL OR c.player_id = :player)
                    ORDER BY c.issued_at DESC
                    LIMIT :n
                    """
                ),
                {
                    "status": status.value if status else None,
                    "game": game_id,
                    "player": player_id,
                    "n": limit,
                },
            ).mappings()
        ]
