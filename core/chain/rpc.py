"""A small JSON-RPC client for the indexer: batched calls over one HTTP connection, every
call retried with exponential backoff on transport errors, timeouts and 5xx answers.

web3.py would cost ~10x the CPU per call here; the indexer needs five methods.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import Any

import httpx
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from core.chain.reorg import BlockRef

log = logging.getLogger(__name__)
MAX_BATCH = 100  # calls per JSON-RPC batch request


class RpcError(RuntimeError):
    """The node answered with an error (after retries for transient ones)."""


class RpcUnavailable(RpcError):
    """The node could not be reached or answered 5xx: worth retrying."""


class Rpc:
    def __init__(self, url: str, timeout_s: float = 10.0, attempts: int = 5) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout_s)
        self._ids = itertools.count(1)
        self._attempts = attempts

    def close(self) -> None:
        self._client.close()

    def _post(self, body: Any) -> Any:
        try:
            response = self._client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise RpcUnavailable(f"{self.url}: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise RpcUnavailable(f"{self.url}: HTTP {response.status_code}")
        if response.status_code != 200:
            raise RpcError(f"{self.url}: HTTP {response.status_code}: {response.text[:200]}")
        return response.json()

    def _with_retries(self, body: Any) -> Any:
        for attempt in Retrying(
            retry=retry_if_exception_type(RpcUnavailable),
            wait=wait_exponential(multiplier=0.2, max=5.0),
            stop=stop_after_attempt(self._attempts),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        ):
            with attempt:
                return self._post(body)
        raise AssertionError("unreachable")

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        answer = self._with_retries(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        )
        if "error" in answer:
            raise RpcError(f"{method}: {answer['error']}")
        return answer["result"]

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Results of ``calls`` in order (one HTTP request per ``MAX_BATCH`` calls)."""
        results: list[Any] = []
        for offset in range(0, len(calls), MAX_BATCH):
            chunk = calls[offset : offset + MAX_BATCH]
            first = next(self._ids)
            for _ in range(len(chunk) - 1):
                next(self._ids)
            body = [
                {"jsonrpc": "2.0", "id": first + i, "method": m, "params": list(p)}
                for i, (m, p) in enumerate(chunk)
            ]
            answers = self._with_retries(body)
            if not isinstance(answers, list):
                raise RpcError(f"batch answered {answers!r:.200}")
            by_id = {a.get("id"): a for a in answers}
            for i, (method, _) in enumerate(chunk):
                answer = by_id.get(first + i)
                if answer is None or "error" in answer:
                    raise RpcError(f"{method}: {answer and answer.get('error')}")
                results.append(answer["result"])
        return results

    # ---- the methods the indexer needs -------------------------------------------------

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def blocks(self, numbers: Sequence[int]) -> list[BlockRef | None]:
        """Headers of ``numbers`` (None where the node has no such block)."""
        raw = self.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        return [block_ref(b) if b else None for b in raw]

    def logs(self, first: int, last: int, topics: Sequence[str]) -> list[dict[str, Any]]:
        return list(
            self.call(
                "eth_getLogs",
                [{"fromBlock": hex(first), "toBlock": hex(last), "topics": [list(topics)]}],
            )
        )

    def eth_call(self, to: str, data: str) -> str:
        return str(self.call("eth_call", [{"to": to, "data": data}, "latest"]))


def block_ref(raw: dict[str, Any]) -> BlockRef:
    return BlockRef(
        number=int(raw["number"], 16),
        hash=str(raw["hash"]).lower(),
        parent_hash=str(raw["parentHash"]).lower(),
        timestamp=int(raw["timestamp"], 16),
    )
