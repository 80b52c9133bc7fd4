"""What the app's write flows ask of an EVM node: reads (``eth_call``), simulations of the
transactions a wallet will sign (with the revert data kept, unlike :mod:`core.chain.rpc`),
suggested EIP-1559 fees, and the transactions and receipts that track a submitted action.

A simulation of several transactions in a row (approvals, then the action) is one
``eth_simulateV1`` request, each call seeing the state the previous ones left; a node
without that method simulates the last call alone with ``eth_call``.

Gas depends on when the transaction is mined, not only on what it does: a vault's reward
accounting writes nothing when no second has passed since its last update and five storage
slots when one has (one of them from zero, 20,000 gas), so a stake simulated in the block of
the last update needs 90k and the same stake mined five seconds later 138k (measured on
anvil). Each simulation therefore runs twice, in the next block and in a block
:data:`LATER_S` later (``blockOverrides.time``), and each call gets the larger gas.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx

from core.platform.errors import Unavailable

# The receipt's gas is after the refund, which is at most a fifth of the gas spent: x 1.25
# gives the limit the spending needs, the pad the 63/64 kept back at each inner call.
GAS_MARGIN = 1.25
GAS_PAD = 25_000
# A wallet signs within minutes: the simulation is also run this far in the future, so that
# state that moves with time (rewards accruing, a period ending) is priced in the gas.
LATER_S = 120


class NodeUnavailable(Unavailable):
    """The chain's node did not answer (nothing was prepared or changed)."""


class CallReverted(Exception):
    """An ``eth_call`` reverted; ``data`` is the revert data (``0x`` hex, maybe empty)."""

    def __init__(self, data: str, message: str) -> None:
        super().__init__(message)
        self.data = data
        self.message = message


@dataclass(frozen=True)
class Call:
    """One transaction as the wallet will send it (before gas and fees)."""

    sender: str
    to: str
    data: str
    value: int = 0

    def json(self) -> dict[str, str]:
        return {"from": self.sender, "to": self.to, "data": self.data, "value": hex(self.value)}


@dataclass(frozen=True)
class Simulated:
    """The outcome of one simulated call: gas used, or the revert data."""

    ok: bool
    gas_used: int
    revert_data: str | None


@dataclass(frozen=True)
class Fees:
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    base_fee_per_gas: int


def _revert_data(error: dict[str, Any]) -> str | None:
    data = error.get("data")
    if isinstance(data, dict):  # some nodes nest it: {"data": {"data": "0x..."}}
        data = data.get("data")
    return data if isinstance(data, str) and data.startswith("0x") else None


def _is_revert(error: dict[str, Any]) -> bool:
    message = str(error.get("message", "")).lower()
    return error.get("code") == 3 or "revert" in message


class Node:
    """One chain's node, for the write flows (one HTTP connection, closed by ``close``)."""

    def __init__(self, chain_id: int, url: str, timeout_s: float = 10.0) -> None:
        self.chain_id = chain_id
        self.url = url
        self._client = httpx.Client(timeout=timeout_s)
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(self, method: str, params: list[Any]) -> dict[str, Any]:
        """The node's whole answer (``result`` or ``error``); 503 when it cannot be reached."""
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = self._client.post(self.url, json=body)
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise NodeUnavailable(
                f"the node of chain {self.chain_id} did not answer {method} ({exc}); "
                "nothing was changed, retry later"
            ) from exc
        return answer

    def result(self, method: str, params: list[Any]) -> Any:
        answer = self.request(method, params)
        if "error" in answer:
            raise NodeUnavailable(
                f"the node of chain {self.chain_id} refused {method}: {answer['error']}"
            )
        return answer.get("result")

    # ---- reads -------------------------------------------------------------------------

    def node_chain_id(self) -> int:
        return int(self.result("eth_chainId", []), 16)

    def eth_call(self, call: Call, block: str = "latest") -> str:
        """The call's return data; :class:`CallReverted` when it reverts."""
        answer = self.request("eth_call", [call.json(), block])
        if "error" in answer:
            error = answer["error"]
            if _is_revert(error):
                raise CallReverted(_revert_data(error) or "0x", str(error.get("message")))
            raise NodeUnavailable(f"the node of chain {self.chain_id} refused eth_call: {error}")
        return str(answer["result"])

    def read(self, to: str, data: str) -> str:
        return self.eth_call(Call("0x" + "00" * 20, to, data))

    def latest_block(self) -> dict[str, Any]:
        block: dict[str, Any] = self.result("eth_getBlockByNumber", ["latest", False])
        return block

    def block_number(self) -> int:
        return int(self.result("eth_blockNumber", []), 16)

    def block_hash(self, number: int) -> str | None:
        block = self.result("eth_getBlockByNumber", [hex(number), False])
        return str(block["hash"]).lower() if block else None

    def nonce(self, address: str) -> int:
        return int(self.result("eth_getTransactionCount", [address, "pending"]), 16)

    def fees(self) -> Fees:
        """Suggested EIP-1559 fees: the node's tip, and twice the base fee plus the tip as the
        cap (room for six full blocks of base fee increases)."""
        base = int(self.latest_block().get("baseFeePerGas") or "0x0", 16)
        tip = int(self.result("eth_maxPriorityFeePerGas", []), 16)
        return Fees(2 * base + tip, tip, base)

    # ---- simulation ----------------------------------------------------------------------

    def simulate(self, calls: list[Call]) -> list[Simulated]:
        """Each call's outcome, run in order on the latest state (approvals before actions),
        with the larger gas of the next block and of a block :data:`LATER_S` later."""
        later = int(self.latest_block()["timestamp"], 16) + LATER_S
        if len(calls) > 1:
            now = self._simulate_v1(calls)
            if now is not None:
                if all(r.ok for r in now):
                    return _larger_gas(now, self._simulate_v1(calls, time=later))
                return now
        try:
            self.eth_call(calls[-1])
        except CallReverted as exc:
            return [Simulated(True, 0, None)] * (len(calls) - 1) + [Simulated(False, 0, exc.data)]
        gas = int(self.result("eth_estimateGas", [calls[-1].json()]), 16)
        last = Simulated(True, gas, None)
        if len(calls) == 1:  # eth_estimateGas answers for now only: the later block's gas too
            (last,) = _larger_gas([last], self._simulate_v1(calls, time=later))
        return [Simulated(True, 0, None)] * (len(calls) - 1) + [last]

    def _simulate_v1(self, calls: list[Call], *, time: int | None = None) -> list[Simulated] | None:
        """``eth_simulateV1`` of the calls in one block (at ``time`` when given); ``None``
        when the node has no such method."""
        block: dict[str, Any] = {"calls": [c.json() for c in calls]}
        if time is not None:
            block["blockOverrides"] = {"time": hex(time)}
        answer = self.request("eth_simulateV1", [{"blockStateCalls": [block]}, "latest"])
        if "result" not in answer:
            return None
        return [
            Simulated(
                int(r["status"], 16) == 1,
                int(r["gasUsed"], 16),
                None if int(r["status"], 16) == 1 else (r.get("returnData") or "0x"),
            )
            for r in answer["result"][0]["calls"]
        ]

    def estimate_gas(self, call: Call) -> int:
        return int(self.result("eth_estimateGas", [call.json()]), 16)

    # ---- tracking ------------------------------------------------------------------------

    def transaction(self, tx_hash: str) -> dict[str, Any] | None:
        tx: dict[str, Any] | None = self.result("eth_getTransactionByHash", [tx_hash])
        return tx

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        receipt: dict[str, Any] | None = self.result("eth_getTransactionReceipt", [tx_hash])
        return receipt

    def logs(self, address: str, topics: list[str | None], from_block: int) -> list[dict[str, Any]]:
        query = {"fromBlock": hex(from_block), "toBlock": "latest", "address": address}
        logs: list[dict[str, Any]] = self.result("eth_getLogs", [query | {"topics": topics}])
        return logs


def _larger_gas(now: list[Simulated], later: list[Simulated] | None) -> list[Simulated]:
    """``now`` with each call's gas the larger of the two simulations (a call that would
    revert later keeps its gas of now: it is refused only when it reverts now)."""
    if later is None or len(later) != len(now):
        return now
    return [
        Simulated(n.ok, max(n.gas_used, x.gas_used) if x.ok else n.gas_used, n.revert_data)
        for n, x in zip(now, later, strict=True)
    ]


def padded_gas(gas_used: int) -> int:
    return int(gas_used * GAS_MARGIN) + GAS_PAD
