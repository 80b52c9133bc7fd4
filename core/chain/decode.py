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
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak
from pydantic_core import to_json

from core.chain.contracts import HEX_ADDRESS, HEX_HASH, ChainLog
from core.chain.reorg import BlockRef
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


def _token(topics: list[str], data: bytes) -> tuple[str, str, list[dict[str, Any]]] | None:
    """(event, standard, moves) of a standard token transfer, or None."""
    topic0 = topics[0]
    try:
        if topic0 == TRANSFER and len(topics) == 3 and len(data) == 32:
            move = {
                "sender": _address_topic(topics[1]),
                "recipient": _address_topic(topics[2]),
                "token_id": None,
                "amount": str(int.from_bytes(data, "big")),  # one uint256: no ABI decoder
            }
            return "Transfer", "erc20", [move]
        if topic0 == TRANSFER and len(topics) == 4 and not data:
            move = {
                "sender": _address_topic(topics[1]),
                "recipient": _address_topic(topics[2]),
                "token_id": str(int(topics[3], 16)),
                "amount": "1",
            }
            return "Transfer", "erc721", [move]
        if topic0 in (TRANSFER_SINGLE, TRANSFER_BATCH) and len(topics) == 4:
            sender, recipient = _address_topic(topics[2]), _address_topic(topics[3])
            if topic0 == TRANSFER_SINGLE:
                if len(data) != 64:
                    return None
                pairs = [(int.from_bytes(data[:32], "big"), int.from_bytes(data[32:], "big"))]
                event = "TransferSingle"
            else:
                ids, amounts = abi_decode(["uint256[]", "uint256[]"], data)
                if len(ids) != len(amounts):
                    return None
                pairs = list(zip(ids, amounts, strict=True))
                event = "TransferBatch"
            moves = [
                {"sender": sender, "recipient": recipient, "token_id": str(i), "amount": str(a)}
                for i, a in pairs
            ]
            return event, "erc1155", moves
    except (DecodingError, ValueError, OverflowError):
        return None
    return None


# ---- a whole range, fast ---------------------------------------------------------------
# The indexer's hot path renders each log's JSON straight from its fields (the field order
# and defaults of ``ChainLog``, so the bytes equal ``model_dump_json``): building a pydantic
# model per log and dumping it cost ~25 µs of the ~35 µs per log, for values that are
# checked once each here instead: a block's hash, a transaction's, a contract's address,
# an address topic repeat across logs, so each is matched against the contract's pattern
# once (cached). A value that does not fit raises ``ValueError``, as the model did; the unit
# tests validate every payload as ``ChainLog``.
_HASH = re.compile(HEX_HASH)
_ADDRESS = re.compile(HEX_ADDRESS)


@lru_cache(maxsize=1 << 16)
def _checked(value: str, kind: str) -> str:
    lowered = value.lower()
    if (_HASH if kind == "hash" else _ADDRESS).match(lowered) is None:
        raise ValueError(f"not a {kind} of the ChainLog contract: {value!r:.80}")
    return lowered


class EncodedLog(NamedTuple):
    """A decoded log as the indexer stores and publishes it: its key, identity and JSON."""

    key: bytes
    block_number: int
    block_hash: str
    log_index: int
    payload: str


def encoded(record: ChainLog) -> EncodedLog:
    return EncodedLog(
        record.key,
        record.block_number,
        record.block_hash,
        record.log_index,
        record.model_dump_json(),
    )


def _fields(raw: Mapping[str, Any], chain_id: int, block_timestamp: int) -> dict[str, Any] | None:
    """The fields of one log's record in ``ChainLog``'s order, or None."""
    topics = [str(t).lower() for t in raw.get("topics") or []]
    if not topics:
        return None
    data = _data(raw)
    token = _token(topics, data)
    if token is not None:
        event, standard, moves = token
        args: dict[str, Any] = {}
    else:
        abi = stride_events().get(topics[0])
        if abi is None:
            return None
        decoded = _decode_event(abi, topics, data)
        if decoded is None:
            return None
        event, standard, moves, args = abi.name, None, [], decoded
    return {
        "version": 1,
        "chain_id": chain_id,
        "block_number": _hex_int(raw["blockNumber"]),
        "block_hash": str(raw["blockHash"]).lower(),
        "block_timestamp": block_timestamp,
        "tx_hash": str(raw["transactionHash"]).lower(),
        "log_index": _hex_int(raw["logIndex"]),
        "contract": str(raw["address"]).lower(),
        "event": event,
        "standard": standard,
        "moves": moves,
        "args": args,
        "removed": False,
    }


def decode_log(raw: Mapping[str, Any], chain_id: int, block_timestamp: int) -> ChainLog | None:
    """The record of one ``eth_getLogs`` entry, or None when it is not a published event
    or does not fit its event's layout."""
    fields = _fields(raw, chain_id, block_timestamp)
    return None if fields is None else ChainLog.model_validate(fields)


def decode_range(
    raw_logs: Sequence[Mapping[str, Any]], headers: Sequence[BlockRef], chain_id: int
) -> list[EncodedLog] | None:
    """The published logs of one ``eth_getLogs`` answer over the blocks ``headers``, in
    the node's order, each as the JSON of its ``ChainLog``; None when a log names a block
    hash that is not its header's (the chain moved between the calls)."""
    if chain_id < 1:
        raise ValueError(f"chain id {chain_id}")
    by_number = {h.number: h for h in headers}
    out: list[EncodedLog] = []
    for raw in raw_logs:
        header = by_number.get(_hex_int(raw["blockNumber"]))
        if header is None or str(raw["blockHash"]).lower() != header.hash:
            return None
        if raw.get("removed"):
            continue
        fields = _fields(raw, chain_id, header.timestamp)
        if fields is None:
            continue
        _checked(fields["block_hash"], "hash")
        _checked(fields["tx_hash"], "hash")
        contract = _checked(fields["contract"], "address")
        for move in fields["moves"]:
            _checked(move["sender"], "address")
            _checked(move["recipient"], "address")
        if min(fields["block_number"], fields["log_index"], fields["block_timestamp"]) < 0:
            raise ValueError(f"not a ChainLog: {fields!r:.200}")
        out.append(
            EncodedLog(
                f"{chain_id}:{contract}".encode(),
                fields["block_number"],
                fields["block_hash"],
                fields["log_index"],
                to_json(fields).decode(),
            )
        )
    return out
