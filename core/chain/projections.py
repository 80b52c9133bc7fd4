"""Projections of ``chain.logs.v1`` into PostgreSQL: ERC-20 balances, NFT balances (ERC-721
owners, ERC-1155 amounts), the log table the Stride projections read.

Idempotent per log ``(chain_id, block_hash, log_index)``: ``chain_logs`` keeps each log seen
with whether it is canonical. A message changes the balances only when it flips that flag
(a new log, or a retraction of a canonical one, or a log of a re-canonicalized block), so a
replayed or duplicated message changes nothing. Balances are sums of signed moves, which
commute: the incremental result equals :func:`rebuild` from the canonical logs whatever
the order the partitions were consumed in. :func:`fold` is the pure heart; :func:`apply`
runs it in one transaction per batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from core.chain.contracts import ChainLog
from core.platform.db import json_rows

ZERO_ADDRESS = "0x" + "00" * 20
LogId = tuple[int, str, int]
TokenKey = tuple[int, str, str]  # chain, contract, holder
NftKey = tuple[int, str, int, str]  # chain, contract, token id, holder


@dataclass
class Deltas:
    """What a batch changes: signed amounts per balance, the flag of every log it touched."""

    tokens: dict[TokenKey, int] = field(default_factory=lambda: defaultdict(int))
    nfts: dict[NftKey, int] = field(default_factory=lambda: defaultdict(int))
    nft_standard: dict[tuple[int, str], str] = field(default_factory=dict)
    canonical: dict[LogId, bool] = field(default_factory=dict)
    records: dict[LogId, ChainLog] = field(default_factory=dict)
    heads: dict[int, int] = field(default_factory=dict)
    applied: int = 0
    ignored: int = 0


def add_moves(deltas: Deltas, record: ChainLog, sign: int) -> None:
    """The signed balance changes of one log's moves (the zero address is where mints come
    from and burns go: it holds nothing)."""
    for move in record.moves:
        amount = int(move.amount) * sign
        chain, contract = record.chain_id, record.contract
        if record.standard == "erc20":
            if move.sender != ZERO_ADDRESS:
                deltas.tokens[(chain, contract, move.sender)] -= amount
            if move.recipient != ZERO_ADDRESS:
                deltas.tokens[(chain, contract, move.recipient)] += amount
        elif record.standard in ("erc721", "erc1155") and move.token_id is not None:
            token_id = int(move.token_id)
            if move.sender != ZERO_ADDRESS:
                deltas.nfts[(chain, contract, token_id, move.sender)] -= amount
            if move.recipient != ZERO_ADDRESS:
                deltas.nfts[(chain, contract, token_id, move.recipient)] += amount
            deltas.nft_standard[(chain, contract)] = record.standard


def fold(known: Mapping[LogId, bool], messages: Iterable[ChainLog]) -> Deltas:
    """The deltas of ``messages`` applied in order, given the canonical flag of the logs
    already seen (``known``; a log absent from it was never seen)."""
    deltas = Deltas()
    state = dict(known)
    for message in messages:
        log_id = message.log_id
        want = not message.removed
        was = state.get(log_id)
        if was is None and not want:
            state[log_id] = False  # a retraction before its log: a tombstone
            deltas.canonical[log_id] = False
            deltas.records[log_id] = message
            deltas.ignored += 1
            continue
        if was == want:
            deltas.ignored += 1
            continue
        add_moves(deltas, message, 1 if want else -1)
        state[log_id] = want
        deltas.canonical[log_id] = want
        deltas.records[log_id] = message
        deltas.applied += 1
        if want:
            head = deltas.heads.get(message.chain_id, -1)
            deltas.heads[message.chain_id] = max(head, message.block_number)
    return deltas


def _known(conn: Connection, ids: Sequence[LogId]) -> dict[LogId, bool]:
    rows = conn.execute(
        text(
            "SELECT l.chain_id, l.block_hash, l.log_index, l.canonical FROM chain_logs l "
            "JOIN jsonb_to_recordset(CAST(:rows AS jsonb)) "
            "AS r(chain_id bigint, block_hash text, log_index int) "
            "USING (chain_id, block_hash, log_index) FOR UPDATE OF l"
        ),
        json_rows({"chain_id": c, "block_hash": h, "log_index": i} for c, h, i in ids),
    ).all()
    return {(int(c), str(h), int(i)): bool(k) for c, h, i, k in rows}


def apply(engine: Engine, messages: Sequence[ChainLog]) -> Deltas:
    """Apply one batch in one transaction (a replay of it changes nothing)."""
    with engine.begin() as conn:
        ids = sorted({m.log_id for m in messages})  # locks in one order: no deadlocks
        deltas = fold(_known(conn, ids) if ids else {}, messages)
        _write(conn, deltas)
    return deltas


def _write(conn: Connection, deltas: Deltas) -> None:
    if deltas.canonical:
        conn.execute(
            text(
                "INSERT INTO chain_logs (chain_id, block_hash, log_index, block_number, "
                "block_timestamp, tx_hash, contract, event, standard, moves, args, canonical) "
                "SELECT r.chain_id, r.block_hash, r.log_index, r.block_number, "
                "r.block_timestamp, r.tx_hash, r.contract, r.event, r.standard, r.moves, r.args, "
                "r.canonical FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(chain_id bigint, "
                "block_hash text, log_index int, block_number bigint, block_timestamp bigint, "
                "tx_hash text, contract text, event text, standard text, moves jsonb, "
                "args jsonb, canonical boolean) "
                "ON CONFLICT (chain_id, block_hash, log_index) DO UPDATE "
                "SET canonical = EXCLUDED.canonical, updated_at = now()"
            ),
            json_rows(
                {
                    **deltas.records[log_id].model_dump(
                        include={
                            "chain_id",
                            "block_hash",
                            "log_index",
                            "block_number",
                            "block_timestamp",
                            "tx_hash",
                            "contract",
                            "event",
                            "standard",
                            "moves",
                            "args",
                        }
                    ),
                    "canonical": flag,
                }
                for log_id, flag in deltas.canonical.items()
            ),
        )
    tokens = [(k, v) for k, v in deltas.tokens.items() if v]
    if tokens:
        conn.execute(
            text(
                "INSERT INTO token_balances AS b (chain_id, contract, holder, amount) "
                "SELECT r.chain_id, r.contract, r.holder, r.amount "
                "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
                "AS r(chain_id bigint, contract text, holder text, amount numeric) "
                "ORDER BY 1, 2, 3 "
                "ON CONFLICT (chain_id, contract, holder) DO UPDATE "
                "SET amount = b.amount + EXCLUDED.amount"
            ),
            json_rows(
                {"chain_id": c, "contract": a, "holder": h, "amount": str(v)}
                for (c, a, h), v in tokens
            ),
        )
        conn.execute(
            text(
                "DELETE FROM token_balances b USING jsonb_to_recordset(CAST(:rows AS jsonb)) "
                "AS r(chain_id bigint, contract text, holder text) WHERE b.amount = 0 "
                "AND (b.chain_id, b.contract, b.holder) = (r.chain_id, r.contract, r.holder)"
            ),
            json_rows({"chain_id": c, "contract": a, "holder": h} for (c, a, h), _ in tokens),
        )
    nfts = [(k, v) for k, v in deltas.nfts.items() if v]
    if nfts:
        conn.execute(
            text(
                "INSERT INTO nft_balances AS b (chain_id, contract, token_id, holder, standard, "
                "amount) SELECT r.chain_id, r.contract, r.token_id, r.holder, r.standard, r.amount "
                "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(chain_id bigint, "
                "contract text, token_id numeric, holder text, standard text, amount numeric) "
                "ORDER BY 1, 2, 3, 4 "
                "ON CONFLICT (chain_id, contract, token_id, holder) DO UPDATE "
                "SET amount = b.amount + EXCLUDED.amount"
            ),
            json_rows(
                {
                    "chain_id": c,
                    "contract": a,
                    "token_id": str(t),
                    "holder": h,
                    "standard": deltas.nft_standard[(c, a)],
                    "amount": str(v),
                }
                for (c, a, t, h), v in nfts
            ),
        )
        conn.execute(
            text(
                "DELETE FROM nft_balances b USING jsonb_to_recordset(CAST(:rows AS jsonb)) "
                "AS r(chain_id bigint, contract text, token_id numeric, holder text) "
                "WHERE b.amount = 0 AND (b.chain_id, b.contract, b.token_id, b.holder) = "
                "(r.chain_id, r.contract, r.token_id, r.holder)"
            ),
            json_rows(
                {"chain_id": c, "contract": a, "token_id": str(t), "holder": h}
                for (c, a, t, h), _ in nfts
            ),
        )
    for chain_id, block in deltas.heads.items():
        conn.execute(
            text(
                "INSERT INTO chain_projection_heads AS p (chain_id, block_number) VALUES (:c, :b) "
                "ON CONFLICT (chain_id) DO UPDATE SET updated_at = now(), "
                "block_number = GREATEST(p.block_number, EXCLUDED.block_number)"
            ),
            {"c": chain_id, "b": block},
        )


# ---- rebuild and comparison (tests, `stride chain rebuild`) ------------------------------


Balances = tuple[dict[TokenKey, int], dict[NftKey, int]]


def balances_of(records: Iterable[ChainLog]) -> Balances:
    """The balances a set of canonical logs implies (pure): the from-scratch answer."""
    deltas = Deltas()
    for record in records:
        add_moves(deltas, record, 1)
    return (
        {k: v for k, v in deltas.tokens.items() if v},
        {k: v for k, v in deltas.nfts.items() if v},
    )


def stored_balances(engine: Engine, chain_id: int) -> Balances:
    """The incremental projections of one chain, as :func:`balances_of` shapes them."""
    with engine.connect() as conn:
        tokens = conn.execute(
            text("SELECT contract, holder, amount FROM token_balances WHERE chain_id = :c"),
            {"c": chain_id},
        ).all()
        nfts = conn.execute(
            text("SELECT contract, token_id, holder, amount FROM nft_balances WHERE chain_id = :c"),
            {"c": chain_id},
        ).all()
    return (
        {(chain_id, a, h): int(v) for a, h, v in tokens},
        {(chain_id, a, int(t), h): int(v) for a, t, h, v in nfts},
    )


def canonical_logs(engine: Engine, chain_id: int) -> list[ChainLog]:
    """The canonical logs the projections hold for a chain."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT chain_id, block_number, block_hash, block_timestamp, tx_hash, log_index, "
                "contract, event, standard, moves, args FROM chain_logs "
                "WHERE chain_id = :c AND canonical ORDER BY block_number, log_index"
            ),
            {"c": chain_id},
        ).mappings()
        return [ChainLog.model_validate(dict(row)) for row in rows]


def rebuild(engine: Engine, chain_id: int) -> None:
    """Recompute one chain's balances from its canonical logs (repairs a projection)."""
    tokens, nfts = balances_of(canonical_logs(engine, chain_id))
    standards: dict[tuple[int, str], str] = {}
    for record in canonical_logs(engine, chain_id):
        if record.standard in ("erc721", "erc1155"):
            standards[(record.chain_id, record.contract)] = record.standard
    deltas = Deltas()
    deltas.tokens.update(tokens)
    deltas.nfts.update(nfts)
    deltas.nft_standard.update(standards)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM token_balances WHERE chain_id = :c"), {"c": chain_id})
        conn.execute(text("DELETE FROM nft_balances WHERE chain_id = :c"), {"c": chain_id})
        _write(conn, deltas)
