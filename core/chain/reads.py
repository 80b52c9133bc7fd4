"""Reads of the chain projections for the app: a set of wallets' token balances and NFTs
(filtered to contracts or operators' named collections, by keyset pages), one NFT with its
owners and metadata. Every function takes a list of addresses, so the holdings of all the
wallets a user linked are one call."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.platform.errors import Invalid, NotFound


@dataclass(frozen=True)
class TokenHolding:
    holder: str
    contract: str
    amount: int
    name: str | None
    symbol: str | None
    decimals: int | None


@dataclass(frozen=True)
class NftMeta:
    status: str
    token_uri: str | None
    name: str | None
    description: str | None
    image: str | None
    image_url: str | None
    animation_url: str | None
    attributes: list[dict[str, Any]]
    content_type: str | None
    reason: str | None


@dataclass(frozen=True)
class NftHolding:
    holder: str
    contract: str
    token_id: int
    standard: str
    amount: int
    collection_name: str | None
    metadata: NftMeta | None


@dataclass(frozen=True)
class NftPage:
    items: list[NftHolding]
    next_cursor: str | None


def token_balances(conn: Connection, chain_id: int, holders: list[str]) -> list[TokenHolding]:
    rows = conn.execute(
        text(
            "SELECT b.holder, b.contract, b.amount, f.name, f.symbol, f.decimals "
            "FROM token_balances b LEFT JOIN contract_facts f USING (chain_id, contract) "
            "WHERE b.chain_id = :c AND b.holder = ANY(:h) ORDER BY b.holder, b.contract"
        ),
        {"c": chain_id, "h": holders},
    ).all()
    return [TokenHolding(h, a, int(v), n, s, d) for h, a, v, n, s, d in rows]


def encode_cursor(contract: str, token_id: int, holder: str) -> str:
    return base64.urlsafe_b64encode(f"{contract}:{token_id}:{holder}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, int, str]:
    try:
        contract, token_id, holder = base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
        return contract, int(token_id), holder
    except (ValueError, UnicodeDecodeError):
        raise Invalid("cursor: not a cursor this API returned") from None


def collection_contracts(conn: Connection, chain_id: int, names: list[str]) -> list[str]:
    """The contracts of the named collections; an unknown name is a NotFound."""
    rows = conn.execute(
        text("SELECT name, contract FROM nft_collections WHERE chain_id = :c AND name = ANY(:n)"),
        {"c": chain_id, "n": names},
    ).all()
    unknown = sorted(set(names) - {name for name, _ in rows})
    if unknown:
        raise NotFound(f"no collection named {', '.join(map(repr, unknown))} on chain {chain_id}")
    return sorted({contract for _, contract in rows})


def _meta(row: Any) -> NftMeta | None:
    if row.status is None:
        return None
    return NftMeta(
        row.status,
        row.token_uri,
        row.meta_name,
        row.description,
        row.image,
        row.image_url,
        row.animation_url,
        list(row.attributes or []),
        row.content_type,
        row.reason,
    )


_NFT_SELECT = (
    "SELECT b.holder, b.contract, b.token_id, b.standard, b.amount, "
    "(SELECT min(c.name) FROM nft_collections c WHERE c.chain_id = b.chain_id "
    " AND c.contract = b.contract) AS collection_name, "
    "m.status, m.token_uri, m.name AS meta_name, m.description, m.image, m.image_url, "
    "m.animation_url, m.attributes, m.content_type, m.reason "
    "FROM nft_balances b LEFT JOIN nft_metadata m "
    "ON m.chain_id = b.chain_id AND m.contract = b.contract AND m.token_id = b.token_id "
)


def nft_holdings(
    conn: Connection,
    chain_id: int,
    holders: list[str],
    *,
    contracts: list[str] | None,
    limit: int,
    cursor: str | None,
    with_metadata: bool,
) -> NftPage:
    """One page of the NFTs ``holders`` hold, by (contract, token id, holder)."""
    where = ["b.chain_id = :c", "b.holder = ANY(:h)"]
    params: dict[str, Any] = {"c": chain_id, "h": holders, "n": limit + 1}
    if contracts is not None:
        where.append("b.contract = ANY(:contracts)")
        params["contracts"] = contracts
    if cursor:
        contract, token_id, holder = decode_cursor(cursor)
        where.append("(b.contract, b.token_id, b.holder) > (:ac, :at, :ah)")
        params |= {"ac": contract, "at": Decimal(token_id), "ah": holder}
    rows = conn.execute(
        text(
            _NFT_SELECT
            + "WHERE "
            + " AND ".join(where)
            + " ORDER BY b.contract, b.token_id, b.holder LIMIT :n"
        ),
        params,
    ).all()
    items = [
        NftHolding(
            r.holder,
            r.contract,
            int(r.token_id),
            r.standard,
            int(r.amount),
            r.collection_name,
            _meta(r) if with_metadata else None,
        )
        for r in rows[:limit]
    ]
    last = items[-1] if len(rows) > limit else None
    return NftPage(
        items, encode_cursor(last.contract, last.token_id, last.holder) if last else None
    )


def nft(conn: Connection, chain_id: int, contract: str, token_id: int) -> list[NftHolding]:
    """Every holder of one NFT (one for an ERC-721), with its metadata; NotFound if none."""
    rows = conn.execute(
        text(
            _NFT_SELECT
            + "WHERE b.chain_id = :c AND b.contract = :a AND b.token_id = :t ORDER BY b.holder"
        ),
        {"c": chain_id, "a": contract, "t": Decimal(token_id)},
    ).all()
    if not rows:
        raise NotFound(f"no holder of token {token_id} of {contract} on chain {chain_id}")
    return [
        NftHolding(
            r.holder,
            r.contract,
            int(r.token_id),
            r.standard,
            int(r.amount),
            r.collection_name,
            _meta(r),
        )
        for r in rows
    ]


def add_collection(conn: Connection, chain_id: int, name: str, contracts: list[str]) -> None:
    """Register (idempotently) a named collection's contracts on a chain."""
    for contract in contracts:
        conn.execute(
            text(
                "INSERT INTO nft_collections (chain_id, name, contract) VALUES (:c, :n, :a) "
                "ON CONFLICT DO NOTHING"
            ),
            {"c": chain_id, "n": name, "a": contract.lower()},
        )
