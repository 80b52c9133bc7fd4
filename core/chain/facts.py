"""Contract facts, fetched once per contract and cached in ``contract_facts``: which
standard it implements (ERC-165 ``supportsInterface`` for ERC-721 / ERC-1155, else an
ERC-20 if it answers ``decimals()``), its name, symbol and decimals.

The probing is pure over an ``eth_call`` function (``call(to, data) -> hex | None``, None
when the call reverts), so it is tested without a node.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.platform.db import json_rows

EthCall = Callable[[str, str], str | None]

SUPPORTS_INTERFACE = "0x01ffc9a7"
ERC721_INTERFACE = "80ac58cd"
ERC1155_INTERFACE = "d9b67a26"
NAME, SYMBOL, DECIMALS = "0x06fdde03", "0x95d89b41", "0x313ce567"


@dataclass(frozen=True)
class Facts:
    contract: str
    standard: str | None
    name: str | None
    symbol: str | None
    decimals: int | None


def _supports(call: EthCall, contract: str, interface: str) -> bool:
    answer = call(contract, SUPPORTS_INTERFACE + interface + "00" * 28)
    return answer is not None and len(answer) >= 66 and int(answer[2:66] or "0", 16) == 1


def decode_string(answer: str | None, limit: int) -> str | None:
    """An ABI ``string`` return value (or a bytes32 one, as some old tokens answer)."""
    if not answer or answer == "0x":
        return None
    raw = bytes.fromhex(answer[2:])
    try:
        (value,) = abi_decode(["string"], raw)
    except (DecodingError, ValueError, OverflowError, UnicodeDecodeError):
        if len(raw) != 32:
            return None
        value = raw.rstrip(b"\0").decode("utf-8", "replace")
    return str(value)[:limit] or None


def _uint(answer: str | None, maximum: int) -> int | None:
    if not answer or len(answer) < 66:
        return None
    value = int(answer[2:66], 16)
    return value if value <= maximum else None


def probe(call: EthCall, contract: str) -> Facts:
    """What ``contract`` is, from its answers."""
    if _supports(call, contract, ERC721_INTERFACE):
        standard: str | None = "erc721"
    elif _supports(call, contract, ERC1155_INTERFACE):
        standard = "erc1155"
    else:
        standard = None
    decimals = _uint(call(contract, DECIMALS), 255) if standard is None else None
    if standard is None and decimals is not None:
        standard = "erc20"
    return Facts(
        contract=contract,
        standard=standard,
        name=decode_string(call(contract, NAME), 256),
        symbol=decode_string(call(contract, SYMBOL), 64),
        decimals=decimals,
    )


def missing_contracts(engine: Engine, limit: int = 50) -> list[tuple[int, str]]:
    """Contracts the projections hold whose facts are not cached yet."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT DISTINCT chain_id, contract FROM ("
                " SELECT chain_id, contract FROM token_balances"
                " UNION SELECT chain_id, contract FROM nft_balances) c "
                "WHERE NOT EXISTS (SELECT 1 FROM contract_facts f "
                " WHERE f.chain_id = c.chain_id AND f.contract = c.contract) LIMIT :n"
            ),
            {"n": limit},
        ).all()
    return [(int(c), str(a)) for c, a in rows]


def store_facts(engine: Engine, chain_id: int, facts: Iterable[Facts]) -> None:
    rows = [
        {
            "contract": f.contract,
            "standard": f.standard,
            "name": f.name,
            "symbol": f.symbol,
            "decimals": f.decimals,
        }
        for f in facts
    ]
    if not rows:
        return
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO contract_facts (chain_id, contract, standard, name, symbol, decimals) "
                "SELECT :c, r.contract, r.standard, r.name, r.symbol, r.decimals "
                "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(contract text, "
                "standard text, name text, symbol text, decimals smallint) "
                "ON CONFLICT (chain_id, contract) DO NOTHING"
            ),
            {"c": chain_id, **json_rows(rows)},
        )
