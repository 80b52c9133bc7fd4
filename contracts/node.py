"""Talking to an EVM node: connect, and send transactions (``TxSender``) for deploy, relayer
and bench. Signs locally with a managed nonce, or on dev chains lets the node sign for one of
its unlocked accounts. Starting a local anvil lives in ``contracts.anvil``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.types import TxParams, TxReceipt, Wei

from contracts.anvil import NodeError, rpc_problem

DEV_CHAIN_IDS = frozenset({31337, 31338, 1337})


def connect(rpc_url: str) -> Web3:
    """A Web3 client for `rpc_url`; raises NodeError when the node does not answer."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    problem = rpc_problem(rpc_url)
    if problem:
        raise NodeError(problem)
    return w3


@dataclass
class TxSender:
    """Sends contract transactions from one account and waits for them to be mined.

    With `account` set, transactions are signed here (nonce managed locally, gas estimated
    and padded). Without it, the node signs for `address`, which must be one of its
    unlocked accounts: only accepted on dev chains.
    """

    w3: Web3
    address: str
    account: LocalAccount | None = None
    gas_margin: float = 1.2
    _nonce: int | None = field(default=None, repr=False)

    @classmethod
    def from_key(cls, w3: Web3, private_key: str) -> TxSender:
        account = Account.from_key(private_key)
        return cls(w3=w3, address=account.address, account=account)

    @classmethod
    def dev_account(cls, w3: Web3, index: int = 0) -> TxSender:
        """Use unlocked account `index` of a local dev node (anvil)."""
        if w3.eth.chain_id not in DEV_CHAIN_IDS:
            raise NodeError(
                f"chain {w3.eth.chain_id} is not a local dev chain: set a private key instead"
            )
        return cls(w3=w3, address=w3.eth.accounts[index])

    def _next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = self.w3.eth.get_transaction_count(
                Web3.to_checksum_address(self.address), "pending"
            )
        nonce = self._nonce
        self._nonce += 1
        return nonce

    def send(self, tx: dict[str, Any]) -> TxReceipt:
        """Send a raw transaction dict (to/data/value) and return its successful receipt."""
        tx = {"from": self.address, "chainId": self.w3.eth.chain_id, **tx}
        if self.account is None:
            tx_hash = self.w3.eth.send_transaction(tx)  # type: ignore[arg-type]
        else:
            tx.setdefault("gas", int(self.w3.eth.estimate_gas(tx) * self.gas_margin) + 25_000)  # type: ignore[arg-type]
            tx.setdefault("nonce", self._next_nonce())
            if "gasPrice" not in tx and "maxFeePerGas" not in tx:
                base = self.w3.eth.get_block("latest").get("baseFeePerGas", 0)
                tip = self.w3.eth.max_priority_fee
                tx["maxPriorityFeePerGas"] = tip
                tx["maxFeePerGas"] = 2 * base + tip
            signed = self.account.sign_transaction(tx)
            try:
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Exception:
                self._nonce = None  # resync with the node on the next send
                raise
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=300)
        if receipt["status"] != 1:
            raise NodeError(f"transaction {tx_hash.hex()} reverted")
        return receipt

    def call(self, fn: ContractFunction, value: int = 0) -> TxReceipt:
        """Send a contract function call as a transaction."""
        params: TxParams = {
            "from": Web3.to_checksum_address(self.address),
            "value": Wei(value),
            "gas": 0,
        }
        tx = fn.build_transaction(params)
        tx.pop("gas", None)
        return self.send({"to": tx["to"], "data": tx["data"], "value": value})

    def deploy(self, abi: list[dict[str, Any]], bytecode: str, *args: Any) -> TxReceipt:
        """Deploy a contract and return the receipt (``contractAddress`` holds the address)."""
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        data = factory.constructor(*args).data_in_transaction
        return self.send({"data": data})
