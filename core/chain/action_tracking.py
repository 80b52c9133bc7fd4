"""Following a submitted action on chain: its transaction must be the one prepared (same
sender, contract, calldata, value and chain), then its receipt decides: ``confirmed`` once
mined with status 1 in a block still canonical and ``confirmations`` deep, ``failed`` with
the decoded reason when it reverted. A bridge transfer confirmed on its source chain is
``relaying`` until the relayer's ``BridgeIn`` of the same (source chain, nonce) is mined on
the destination chain.

The decisions are pure (:func:`tx_mismatch`, :func:`outcome`, :func:`bridge_out_of`); the
node is asked for the facts by :func:`follow`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak

from core.chain import abi
from core.chain.node import Call, CallReverted, Node
from core.platform.errors import Invalid

BRIDGE_OUT = "0x" + keccak(text="BridgeOut(uint256,uint256,address,address,uint256)").hex()
BRIDGE_IN = "0x" + keccak(text="BridgeIn(uint256,uint256,address,address,uint256)").hex()


class TxMismatch(Invalid):
    code = "tx_mismatch"


class TxUnknown(Invalid):
    code = "tx_not_found"


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value or 0)


def tx_mismatch(prepared: dict[str, Any], tx: dict[str, Any]) -> str | None:
    """What differs between the prepared transaction and the one the node has (None: none)."""
    checks = (
        ("from", lambda t: str(t.get("from", "")).lower(), str(prepared["from"]).lower()),
        ("to", lambda t: str(t.get("to") or "").lower(), str(prepared["to"]).lower()),
        (
            "data",
            lambda t: str(t.get("input") or t.get("data") or "0x").lower(),
            str(prepared["data"]).lower(),
        ),
        ("value", lambda t: _int(t.get("value")), _int(prepared["value"])),
        ("chainId", lambda t: _int(t.get("chainId")), _int(prepared["chainId"])),
    )
    for name, read, expected in checks:
        got = read(tx)
        if name == "chainId" and tx.get("chainId") is None:
            continue  # a legacy pre-EIP-155 transaction names no chain: the node is the chain's
        if got != expected:
            return f"{name}: the transaction has {got}, the action prepared {expected}"
    return None


@dataclass(frozen=True)
class Outcome:
    status: str  # submitted | confirmed | failed
    block_number: int | None = None
    block_hash: str | None = None
    reason: str | None = None


def outcome(
    receipt: dict[str, Any] | None, head: int, canonical_hash: str | None, confirmations: int
) -> Outcome:
    """The status a receipt gives (before a failed one's reason is decoded)."""
    if receipt is None or receipt.get("blockNumber") is None:
        return Outcome("submitted")
    number, block_hash = _int(receipt["blockNumber"]), str(receipt["blockHash"]).lower()
    if canonical_hash is not None and canonical_hash != block_hash:
        return Outcome("submitted")  # its block was orphaned: it may be mined again
    if _int(receipt.get("status")) != 1:
        return Outcome("failed", number, block_hash)
    if head - number + 1 < confirmations:  # the action's own block counts as one
        return Outcome("submitted", number, block_hash)
    return Outcome("confirmed", number, block_hash)


def bridge_out_of(receipt: dict[str, Any], bridge: str) -> tuple[int, int] | None:
    """(nonce, destination chain) of the receipt's ``BridgeOut`` log of ``bridge``."""
    for log in receipt.get("logs") or []:
        topics = [str(t).lower() for t in log.get("topics") or []]
        if abi.addresses_equal(log.get("address"), bridge) and topics[:1] == [BRIDGE_OUT]:
            return int(topics[1], 16), int(topics[2], 16)
    return None


def topic_of_int(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def failure_reason(node: Node, tx: dict[str, Any], block_number: int) -> str:
    """The decoded reason of a mined transaction that reverted (replayed with ``eth_call``
    on the state before its block)."""
    call = Call(tx["from"], tx["to"], tx.get("input") or "0x", _int(tx.get("value")))
    try:
        node.eth_call(call, hex(max(block_number - 1, 0)))
    except CallReverted as exc:
        return abi.decode_revert(exc.data).reason
    return "reverted on chain (a replay on the previous block's state succeeds: the state "
    "changed within the block)"


@dataclass(frozen=True)
class Followed:
    outcome: Outcome
    destination: dict[str, Any] | None


def follow(
    node: Node,
    tx_hash: str,
    confirmations: int,
    *,
    bridge: str | None = None,
    destination: Callable[[int], tuple[Node, str] | None] | None = None,
    previous: dict[str, Any] | None = None,
) -> Followed:
    """Where a submitted action's transaction is now (and, for a bridge transfer, its leg on
    the destination chain: ``destination(chain id)`` gives that chain's node and bridge;
    ``previous`` is the leg as last seen). The destination's logs are searched only once its
    bridge says the transfer is processed, from the block its head was at when the leg was
    first seen unprocessed."""
    receipt = node.receipt(tx_hash)
    head = node.block_number()
    canonical = None
    if receipt is not None and receipt.get("blockNumber") is not None:
        canonical = node.block_hash(_int(receipt["blockNumber"]))
    result = outcome(receipt, head, canonical, confirmations)
    if result.status == "failed":
        tx = node.transaction(tx_hash) or {}
        reason = failure_reason(node, tx, result.block_number or 0) if tx else "reverted"
        return Followed(Outcome("failed", result.block_number, result.block_hash, reason), None)
    if result.status != "confirmed" or bridge is None or receipt is None:
        return Followed(result, None)
    out = bridge_out_of(receipt, bridge)
    if out is None:
        return Followed(result, None)
    nonce, chain = out
    leg: dict[str, Any] = {
        "chain_id": chain,
        "nonce": nonce,
        "status": "relaying",
        "tx_hash": None,
        "block_number": None,
    }
    target = destination(chain) if destination else None
    if target is None:
        leg["status"] = "unknown"
        leg["reason"] = f"chain {chain} is not configured here: its leg cannot be followed"
        return Followed(result, leg)
    dst_node, dst_bridge = target
    relaying = Outcome("relaying", result.block_number, result.block_hash)
    processed = dst_node.read(
        dst_bridge, abi.calldata("StrideBridge", "processed", node.chain_id, nonce)
    )
    search_from = int((previous or {}).get("search_from") or 0)
    if not int(processed, 16):
        leg["search_from"] = search_from or dst_node.block_number()
        return Followed(relaying, leg)
    logs = dst_node.logs(
        dst_bridge, [BRIDGE_IN, topic_of_int(node.chain_id), topic_of_int(nonce)], search_from
    )
    if not logs:  # processed, and its log not yet served: look again next time
        return Followed(relaying, leg | {"search_from": search_from})
    log = logs[-1]
    leg |= {
        "status": "confirmed",
        "tx_hash": str(log["transactionHash"]).lower(),
        "block_number": _int(log["blockNumber"]),
    }
    return Followed(result, leg)
