"""Bridge relayer: watch ``BridgeOut`` on a source chain and complete it on the destination.

Owns the validator signing format (EIP-712 ``Transfer`` bound to the destination bridge and
chain), log decoding (pure), and the relay loop. A transfer already processed on the
destination is skipped, so re-scanning is always safe; one over the rate limit stays pending
and is retried on the next pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_typing import ABIError
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError

from contracts.artifacts import load_artifact
from contracts.node import TxSender

TRANSFER_TYPES = {
    "Transfer": [
        {"name": "srcChainId", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "sender", "type": "address"},
        {"name": "recipient", "type": "address"},
        {"name": "amount", "type": "uint256"},
    ]
}


@dataclass(frozen=True)
class BridgeTransfer:
    """One outbound transfer, as emitted on the source chain and signed by validators."""

    src_chain_id: int
    dst_chain_id: int
    nonce: int
    sender: str
    recipient: str
    amount: int
    block_number: int

    def as_struct(self) -> tuple[int, int, str, str, int]:
        return (self.src_chain_id, self.nonce, self.sender, self.recipient, self.amount)


@dataclass(frozen=True)
class RelayOutcome:
    transfer: BridgeTransfer
    status: str  # "relayed" | "already-processed" | "deferred"
    detail: str = ""


def decode_bridge_out(event: Any, src_chain_id: int) -> BridgeTransfer:
    """Pure mapping of a decoded ``BridgeOut`` log to a BridgeTransfer."""
    args = event["args"]
    return BridgeTransfer(
        src_chain_id=src_chain_id,
        dst_chain_id=int(args["dstChainId"]),
        nonce=int(args["nonce"]),
        sender=Web3.to_checksum_address(args["sender"]),
        recipient=Web3.to_checksum_address(args["recipient"]),
        amount=int(args["amount"]),
        block_number=int(event["blockNumber"]),
    )


def sign_transfer(
    validator: LocalAccount, transfer: BridgeTransfer, dst_bridge: str
) -> tuple[str, bytes]:
    """One validator's EIP-712 signature over `transfer` for the destination bridge."""
    message = encode_typed_data(
        domain_data={
            "name": "StrideBridge",
            "version": "1",
            "chainId": transfer.dst_chain_id,
            "verifyingContract": Web3.to_checksum_address(dst_bridge),
        },
        message_types=TRANSFER_TYPES,
        message_data={
            "srcChainId": transfer.src_chain_id,
            "nonce": transfer.nonce,
            "sender": transfer.sender,
            "recipient": transfer.recipient,
            "amount": transfer.amount,
        },
    )
    signed = validator.sign_message(message)
    return validator.address, bytes(signed.signature)


def collect_signatures(
    validators: Iterable[LocalAccount], transfer: BridgeTransfer, dst_bridge: str
) -> list[bytes]:
    """Signatures ordered by increasing signer address, as the bridge requires."""
    signed = [sign_transfer(v, transfer, dst_bridge) for v in validators]
    return [sig for _, sig in sorted(signed, key=lambda pair: int(pair[0], 16))]


def bridge_contract(w3: Web3, address: str) -> Contract:
    return w3.eth.contract(
        address=Web3.to_checksum_address(address), abi=load_artifact("StrideBridge").abi
    )


class Relayer:
    """Relays one direction: `src` chain BridgeOut events to `dst` chain bridgeIn."""

    def __init__(
        self,
        src: Contract,
        dst: Contract,
        validators: Sequence[LocalAccount],
        sender: TxSender,
        *,
        start_block: int = 0,
        confirmations: int = 0,
        checkpoint: Path | None = None,
        batch_blocks: int = 2_000,
    ) -> None:
        self.src = src
        self.dst = dst
        self.validators = list(validators)
        self.sender = sender
        self.confirmations = confirmations
        self.checkpoint = checkpoint
        self.batch_blocks = batch_blocks
        self.src_chain_id = src.w3.eth.chain_id
        self.dst_chain_id = dst.w3.eth.chain_id
        self.next_block = max(start_block, self._load_checkpoint())

    def _checkpoint_key(self) -> dict[str, str]:
        return {"src": self.src.address, "dst": self.dst.address}

    def _load_checkpoint(self) -> int:
        """Resume point; ignored when it belongs to other contracts or a reset chain."""
        if not (self.checkpoint and self.checkpoint.exists()):
            return 0
        data = json.loads(self.checkpoint.read_text())
        if {k: data.get(k) for k in ("src", "dst")} != self._checkpoint_key():
            return 0
        next_block = int(data["next_block"])
        return next_block if next_block <= self.src.w3.eth.block_number + 1 else 0

    def _save_checkpoint(self) -> None:
        if self.checkpoint:
            self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
            data = {**self._checkpoint_key(), "next_block": self.next_block}
            self.checkpoint.write_text(json.dumps(data) + "\n")

    def pending(self, from_block: int, to_block: int) -> list[BridgeTransfer]:
        """BridgeOut events for our destination chain between two blocks, in nonce order."""
        events = self.src.events.BridgeOut().get_logs(
            from_block=from_block,
            to_block=to_block,
            argument_filters={"dstChainId": self.dst_chain_id},
        )
        transfers = [decode_bridge_out(e, self.src_chain_id) for e in events]
        return sorted(transfers, key=lambda t: t.nonce)

    def relay(self, transfer: BridgeTransfer) -> RelayOutcome:
        """Complete one transfer on the destination (idempotent)."""
        if self.dst.functions.processed(transfer.src_chain_id, transfer.nonce).call():
            return RelayOutcome(transfer, "already-processed")
        signatures = collect_signatures(self.validators, transfer, self.dst.address)
        fn = self.dst.functions.bridgeIn(transfer.as_struct(), signatures)
        try:
            fn.call({"from": self.sender.address})
        except (ContractCustomError, ContractLogicError) as exc:
            return RelayOutcome(transfer, "deferred", _revert_name(self.dst, exc))
        receipt = self.sender.call(fn)
        return RelayOutcome(transfer, "relayed", receipt["transactionHash"].hex())

    def relay_once(self) -> list[RelayOutcome]:
        """Scan new confirmed blocks and relay what they hold. Deferred transfers keep the
        checkpoint from moving past them, so the next pass retries them."""
        head = self.src.w3.eth.block_number - self.confirmations
        outcomes: list[RelayOutcome] = []
        while self.next_block <= head:
            to_block = min(head, self.next_block + self.batch_blocks - 1)
            batch = [self.relay(t) for t in self.pending(self.next_block, to_block)]
            outcomes.extend(batch)
            deferred = [o.transfer.block_number for o in batch if o.status == "deferred"]
            if deferred:
                self.next_block = min(deferred)
                break
            self.next_block = to_block + 1
        self._save_checkpoint()
        return outcomes


def _revert_name(contract: Contract, exc: Exception) -> str:
    """Name the custom error behind a revert (e.g. ``RateLimitExceeded``) when known."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        for item in contract.abi:
            if item["type"] == "error":
                error = cast(ABIError, item)
                signature = f"{error['name']}({','.join(i['type'] for i in error['inputs'])})"
                if Web3.keccak(text=signature)[:4].hex() == data[2:10]:
                    return error["name"]
    return str(exc)
