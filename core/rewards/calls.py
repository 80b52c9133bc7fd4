"""StrideRewardsDistributor calls and answers (pure): calldata of ``mintBatch`` and
``burnWithPermit``, the command ids a receipt says were paid or skipped, and revert data
decoded into the contract's own error names (every custom error of the committed ABIs)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from core.chain.decode import ARTIFACTS_DIR  # the committed ABIs, read as data
from core.rewards.batching import MintEntry, command_key, command_of_key

MINT_BATCH = "mintBatch(bytes32[],address[],uint256[])"
BURN_WITH_PERMIT = "burnWithPermit(bytes32,address,uint256,uint256,uint8,bytes32,bytes32)"
REWARD_MINTED = "RewardMinted(bytes32,address,uint256)"
REWARD_BURNED = "RewardBurned(bytes32,address,uint256)"
COMMAND_SKIPPED = "CommandSkipped(bytes32)"


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


def mint_batch_calldata(entries: Sequence[MintEntry]) -> bytes:
    return _selector(MINT_BATCH) + abi_encode(
        ["bytes32[]", "address[]", "uint256[]"],
        [
            [command_key(e.command_id) for e in entries],
            [e.recipient for e in entries],
            [e.amount_wei for e in entries],
        ],
    )


def burn_calldata(
    command_id: uuid.UUID, holder: str, amount_wei: int, deadline: int, v: int, r: str, s: str
) -> bytes:
    return _selector(BURN_WITH_PERMIT) + abi_encode(
        ["bytes32", "address", "uint256", "uint256", "uint8", "bytes32", "bytes32"],
        [
            command_key(command_id),
            holder,
            amount_wei,
            deadline,
            v,
            bytes.fromhex(r.removeprefix("0x")),
            bytes.fromhex(s.removeprefix("0x")),
        ],
    )


def executed_commands(logs: Iterable[dict[str, Any]], distributor: str) -> dict[uuid.UUID, str]:
    """command id -> ``paid`` or ``skipped`` from a receipt's logs of the distributor."""
    kinds = {
        topic(REWARD_MINTED): "paid",
        topic(REWARD_BURNED): "paid",
        topic(COMMAND_SKIPPED): "skipped",
    }
    seen: dict[uuid.UUID, str] = {}
    for log in logs:
        if str(log.get("address", "")).lower() != distributor.lower():
            continue
        topics = log.get("topics") or []
        kind = kinds.get(str(topics[0]).lower()) if topics else None
        if kind is not None and len(topics) > 1:
            key = bytes.fromhex(str(topics[1]).removeprefix("0x"))
            seen.setdefault(command_of_key(key), kind)
    return seen


@cache
def _errors() -> dict[bytes, tuple[str, list[str]]]:
    import json

    found: dict[bytes, tuple[str, list[str]]] = {
        _selector("Error(string)"): ("Error", ["string"]),
        _selector("Panic(uint256)"): ("Panic", ["uint256"]),
    }
    for path in sorted(ARTIFACTS_DIR.glob("*.json")):
        for item in json.loads(path.read_text())["abi"]:
            if item.get("type") == "error":
                types = [i["type"] for i in item["inputs"]]
                found[_selector(f"{item['name']}({','.join(types)})")] = (item["name"], types)
    return found


def decode_revert(data: str | bytes | None) -> str:
    """A revert's data as ``ErrorName(arg, ...)`` (or why it cannot be decoded)."""
    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else (data or b"")
    if not raw:
        return "reverted without a reason (out of gas, or a require without message)"
    known = _errors().get(raw[:4])
    if known is None:
        return f"reverted with unknown error 0x{raw[:4].hex()}"
    name, types = known
    try:
        args = abi_decode(types, raw[4:])
    except Exception:
        return f"{name}(undecodable arguments)"
    shown = ", ".join("0x" + a.hex() if isinstance(a, bytes) else str(a) for a in args)
    return f"{name}({shown})"
