"""Fixtures of the chain read side: a real anvil (its own chain id, so nothing else in the
session shares its indexer state), sample contracts deployed from the committed artifacts,
and helpers that index into the session's real Kafka and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from web3 import Web3
from web3.contract import Contract

from chain_indexer.indexer import ChainIndexer
from chain_indexer.publisher import KafkaPublisher
from cli.stack import free_port
from contracts.anvil import running_anvil
from contracts.artifacts import load_artifact
from core.chain import projections
from core.chain.decode import decode_log, indexed_topics
from core.chain.rpc import Rpc
from core.chain.status import forget_chain
from core.platform.config import Settings


@dataclass
class Node:
    chain_id: int
    url: str
    w3: Web3

    def rpc(self, method: str, params: list[Any]) -> Any:
        answer = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        assert "error" not in answer, answer
        return answer["result"]


def start_node(chain_id: int) -> Iterator[Node]:
    with running_anvil(free_port(), chain_id) as url:
        yield Node(chain_id, url, Web3(Web3.HTTPProvider(url)))


def deploy(w3: Web3, name: str, *args: Any) -> Contract:
    artifact = load_artifact(name)
    sender = w3.eth.accounts[0]
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor(*args).transact({"from": sender})
    )
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)


def deploy_samples(w3: Web3, ipfs_base: str, http_base: str) -> SimpleNamespace:
    """An ERC-20 (StrideToken), two ERC-721 collections, an ERC-1155 and StrideItems."""
    admin = w3.eth.accounts[0]
    token = deploy(w3, "StrideToken", "Stride", "STRD", admin)
    token.functions.grantRole(token.functions.MINTER_ROLE().call(), admin).transact({"from": admin})
    items = deploy(w3, "StrideItems", admin, admin, 500)
    items.functions.grantRole(items.functions.MINTER_ROLE().call(), admin).transact({"from": admin})
    return SimpleNamespace(
        token=token,
        items=items,
        ipfs721=deploy(w3, "SampleCollection", "Ipfs Apes", "IAPE", ipfs_base),
        http721=deploy(w3, "SampleCollection", "Http Cats", "HCAT", http_base),
        multi=deploy(w3, "SampleMultiToken", http_base + "multi/{id}.json"),
    )


@pytest.fixture(scope="session")
def chain_settings(kafka: Settings, db_engine: Engine) -> Settings:
    """The session's settings with the indexer tuned for tests: small ranges, so that a
    kill lands mid-stream."""
    return kafka.model_copy(update={"indexer_batch_blocks": 5, "indexer_confirmations": 0})


@contextmanager
def indexer_of(node: Node, engine: Engine, settings: Settings) -> Iterator[ChainIndexer]:
    """An in-process indexer of ``node`` publishing to the session's Kafka."""
    publisher = KafkaPublisher(settings)
    rpc = Rpc(node.url)
    try:
        yield ChainIndexer(node.chain_id, rpc, engine, publisher, settings)
    finally:
        publisher.close()
        rpc.close()


def reset(engine: Engine, chain_id: int) -> None:
    """Forget a chain everywhere: indexer state and projections."""
    forget_chain(engine, chain_id)


def reindexed_balances(node: Node) -> projections.Balances:
    """The balances of the node's canonical chain now, decoded from scratch."""
    rpc = Rpc(node.url)
    try:
        head = rpc.block_number()
        raw = rpc.logs(0, head, indexed_topics())
    finally:
        rpc.close()
    records = [decode_log(r, node.chain_id, 0) for r in raw]
    return projections.balances_of(r for r in records if r is not None)


def wait_for(
    predicate: Callable[[], bool], describe: Callable[[], str], timeout_s: float = 60
) -> None:
    """Poll until ``predicate()`` (the projection agent applies batches asynchronously)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"not reached after {timeout_s:.0f}s: {describe()}")
        time.sleep(0.1)  # readiness polling of the asynchronous agent, bounded by the deadline


def assert_projections_match(engine: Engine, node: Node, timeout_s: float = 60) -> None:
    """The agent's projections reach the from-scratch reindex of the node's chain, and a
    rebuild from the projected canonical logs gives the same."""
    expected = reindexed_balances(node)
    wait_for(
        lambda: projections.stored_balances(engine, node.chain_id) == expected,
        lambda: _diff(projections.stored_balances(engine, node.chain_id), expected),
        timeout_s,
    )
    rebuilt = projections.balances_of(projections.canonical_logs(engine, node.chain_id))
    assert rebuilt == expected


def _diff(got: projections.Balances, want: projections.Balances) -> str:
    lines = []
    for name, g, w in (("tokens", got[0], want[0]), ("nfts", got[1], want[1])):
        for key in sorted(set(g) | set(w), key=str):
            if g.get(key) != w.get(key):
                lines.append(f"{name} {key}: projected {g.get(key)}, chain {w.get(key)}")
    return "; ".join(lines[:10]) or "equal"
