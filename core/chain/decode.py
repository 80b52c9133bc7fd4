"""Pure mappers from raw JSON-RPC logs to :class:`ChainLog` records (no node needed).

Standard token events are decoded for **any** contract: ERC-20 and ERC-721 ``Transfer``
share one topic0 and differ by their indexed topic count (ERC-20: 3 topics and the amount
in ``data``; ERC-721: 4 topics, the token id indexed), ERC-1155 ``TransferSingle`` and
``TransferBatch``. The Stride contracts' own events (vault, marketplace, bridge, items) are
decoded from the committed ABIs in ``contracts/artifacts`` by their topic0. A log that does
not fit its event's layout (a non-conforming contract) decodes to ``None``: skipped, never
half-read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak

from core.chain.contracts import ChainLog, TokenMove
from core.platform.config import REPO_ROOT

ARTIFACTS_DIR = REPO_ROOT / "contracts" / "artifacts"
ZERO_ADDRESS = "0x" + "00" * 20


def topic_of(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


TRANSFER = topic_of("Transfer(address,address,uint256)")
TRANSFER_SINGLE = topic_of("TransferSingle(address,address,address,uint256,uint256)")
TRANSFER_BATCH = topic_of("TransferBatch(address,address,address,uint256[],uint256[])")
STANDARD_TOPICS = (TRANSFER, TRANSFER_SINGLE, TRANSFER_BATCH)

# The Stride contracts whose own events are published, and the events left out of them:
# access control, pausing, approvals and the standard transfers (decoded above for all).
STRIDE_CONTRACTS = ("OmnibusVault", "StrideMarketplace", "StrideBridge", "StrideItems")
NOT_PUBLISHED = frozenset(
    {
        "Approval",
        "ApprovalForAll",
        "Transfer",
        "TransferSingle",
        "TransferBatch",
        "RoleGranted",
        "RoleRevoked",
        "RoleAdminChanged",
        "Paused",
        "Unpaused",
        "EIP712DomainChanged",
    }
)


@dataclass(frozen=True)
class EventAbi:
    """One event's layout: name, and its inputs as (name, type, indexed)."""

    name: str
    inputs: tuple[tuple[str, str, bool], ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(t for _, t, _ in self.inputs)})"


def _events_of(abi: Iterable[Mapping[str, Any]]) -> list[EventAbi]:
    return [
        EventAbi(item["name"], tuple((i["name"], i["type"], i["indexed"]) for i in item["inputs"]))
        for item in abi
        if item.get("type") == "event" and not item.get("anonymous")
    ]


@cache
def stride_events(artifacts_dir: Path = ARTIFACTS_DIR) -> dict[str, EventAbi]:
    """topic0 -> event of the Stride contracts' own published events."""
    events: dict[str, EventAbi] = {}
    for name in STRIDE_CONTRACTS:
        abi = json.loads((artifacts_dir / f"{name}.json").read_text())["abi"]
        for event in _events_of(abi):
            if event.name not in NOT_PUBLISHED:
                events[topic_of(event.signature)] = event
    return events


def indexed_topics() -> list[str]:
    """Every topic0 the indexer asks ``eth_getLogs`` for."""
    return [*STANDARD_TOPICS, *sorted(stride_events())]


def _hex_int(value: str | int) -> int:
    return value if isinstance(value, int) else int(value, 16)


def _address_topic(topic: str) -> str:
    return "0x" + topic[-40:].lower()


def _data(raw: Mapping[str, Any]) -> bytes:
    data = str(raw.get("data") or "0x")
    return bytes.fromhex(data[2:])


def _json_safe(value: Any) -> Any:
    """ABI values as JSON: integers as decimal strings, bytes as hex, addresses lower-case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return value.lower()
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _decode_event(event: EventAbi, topics: list[str], data: bytes) -> dict[str, Any] | None:
    indexed = [(n, t) for n, t, i in event.inputs if i]
    plain = [(n, t) for n, t, i in event.inputs if not i]
    if len(topics) != 1 + len(indexed):
        return None
    try:
        values = abi_decode([t for _, t in plain], data) if plain else ()
    except (DecodingError, ValueError, OverflowError):
        return None
    args: dict[str, Any] = {}
    for (name, type_), topic in zip(indexed, topics[1:], strict=True):
        if type_ in ("string", "bytes") or type_.endswith("]") or type_.startswith("tuple"):
            args[name] = topic.lower()  # dynamic types are indexed by their hash
        else:
            (args[name],) = abi_decode([type_], bytes.fromhex(topic[2:]))
    for (name, _), value in zip(plain, values, strict=True):
        args[name] = value
    return {name: _json_safe(value) for name, value in args.items()}


def _token(topics: list[str], data: bytes) -> tuple[str, str, list[TokenMove]] | None:
    """(event, standard, moves) of a standard token transfer, or None."""
    topic0 = topics[0]
    try:
        if topic0 == TRANSFER and len(topics) == 3 and len(data) == 32:
            (amount,) = abi_decode(["uint256"], data)
            move = TokenMove(
                sender=_address_topic(topics[1]),
                recipient=_address_topic(topics[2]),
                amount=str(amount),
            )
            return "Transfer", "erc20", [move]
        if topic0 == TRANSFER and len(topics) == 4 and not data:
            move = TokenMove(
                sender=_address_topic(topics[1]),
                recipient=_address_topic(topics[2]),
                token_id=str(int(topics[3], 16)),
                amount="1",
            )
            return "Transfer", "erc721", [move]
        if topic0 in (TRANSFER_SINGLE, TRANSFER_BATCH) and len(topics) == 4:
            sender, recipient = _address_topic(topics[2]), _address_topic(topics[3])
            if topic0 == TRANSFER_SINGLE:
                token_id, amount = abi_decode(["uint256", "uint256"], data)
                pairs = [(token_id, amount)]
                event = "TransferSingle"
            else:
                ids, amounts = abi_decode(["uint256[]", "uint256[]"], data)
                if len(ids) != len(amounts):
                    return None
                pairs = list(zip(ids, amounts, strict=True))
                event = "TransferBatch"
            moves = [
                TokenMove(sender=sender, recipient=recipient, token_id=str(i), amount=str(a))
                for i, a in pairs
            ]
            return event, "erc1155", moves
    except (DecodingError, ValueError, OverflowError):
        return None
    return None


def decode_log(raw: Mapping[str, Any], chain_id: int, block_timestamp: int) -> ChainLog | None:
    """The record of one ``eth_getLogs`` entry, or None when it is not a published event
    or does not fit its event's layout."""
    topics = [str(t).lower() for t in raw.get("topics") or []]
    if not topics:
        return None
    data = _data(raw)
    common = {
        "chain_id": chain_id,
        "block_number": _hex_int(raw["blockNumber"]),
        "block_hash": str(raw["blockHash"]).lower(),
        "block_timestamp": block_timestamp,
        "tx_hash": str(raw["transactionHash"]).lower(),
        "log_index": _hex_int(raw["logIndex"]),
        "contract": str(raw["address"]).lower(),
    }
    token = _token(topics, data)
    if token is not None:
        event, standard, moves = token
        return ChainLog(**common, event=event, standard=standard, moves=moves)  # type: ignore[arg-type]
    abi = stride_events().get(topics[0])
    if abi is None:
        return None
    args = _decode_event(abi, topics, data)
    if args is None:
        return None
    return ChainLog(**common, event=abi.name, args=args)  # type: ignore[arg-type]
