"""The indexer reports what is wrong instead of going quiet: an unreachable node is retried
with backoff and recorded as the last error, a head that does not move is reported as
stalled, a node of another chain stops it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from chain_indexer.indexer import ChainIndexer, WrongChain
from chain_indexer.publisher import KafkaPublisher
from cli.stack import free_port
from core.chain.rpc import Rpc
from core.chain.status import ChainStatus, chain_status, forget_chain
from core.platform.config import Settings
from tests.integration.chain.conftest import Node, start_node, wait_for

pytestmark = pytest.mark.integration
CHAIN_ID = 31396


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    yield from start_node(CHAIN_ID)


def status(engine: Engine, stall_after_s: float = 120.0) -> ChainStatus | None:
    with engine.connect() as conn:
        return chain_status(conn, CHAIN_ID, datetime.now(UTC), stall_after_s)


def running(indexer: ChainIndexer) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=indexer.run, args=(stop.is_set,), daemon=True)
    thread.start()
    return stop, thread


def test_an_unreachable_node_is_retried_and_reported(
    db_engine: Engine, chain_settings: Settings
) -> None:
    forget_chain(db_engine, CHAIN_ID)
    publisher = KafkaPublisher(chain_settings)
    rpc = Rpc(f"http://127.0.0.1:{free_port()}", timeout_s=0.5, attempts=2)
    indexer = ChainIndexer(CHAIN_ID, rpc, db_engine, publisher, chain_settings)
    stop, thread = running(indexer)
    try:
        wait_for(
            lambda: bool((s := status(db_engine)) and s.last_error),
            lambda: f"status {status(db_engine)}",
            timeout_s=30,
        )
        assert thread.is_alive()  # still retrying
        current = status(db_engine)
        assert current is not None and "RpcUnavailable" in (current.last_error or "")
    finally:
        stop.set()
        thread.join(timeout=30)
        publisher.close()
        rpc.close()


def test_a_head_that_does_not_move_is_reported_as_stalled(
    node: Node, db_engine: Engine, chain_settings: Settings
) -> None:
    forget_chain(db_engine, CHAIN_ID)
    settings = chain_settings.model_copy(
        update={"indexer_stall_after_s": 0.5, "indexer_poll_s": 0.05}
    )
    publisher = KafkaPublisher(settings)
    rpc = Rpc(node.url)
    stop, thread = running(ChainIndexer(CHAIN_ID, rpc, db_engine, publisher, settings))
    try:
        wait_for(
            lambda: bool((s := status(db_engine, 0.5)) and s.stalled_s),
            lambda: f"status {status(db_engine, 0.5)}",
            timeout_s=30,
        )
        current = status(db_engine, 0.5)
        assert current is not None and current.last_error is None
        assert current.indexed_block == current.head and current.lag == 0
        node.rpc("evm_mine", [])  # the head moves: no longer stalled
        wait_for(
            lambda: bool((s := status(db_engine, 5.0)) and s.head == node.w3.eth.block_number),
            lambda: f"status {status(db_engine, 5.0)}",
        )
        recovered = status(db_engine, 5.0)
        assert recovered is not None and recovered.stalled_s is None
    finally:
        stop.set()
        thread.join(timeout=30)
        publisher.close()
        rpc.close()


def test_a_node_of_another_chain_stops_the_indexer(
    node: Node, db_engine: Engine, chain_settings: Settings
) -> None:
    publisher = KafkaPublisher(chain_settings)
    rpc = Rpc(node.url)
    indexer = ChainIndexer(CHAIN_ID + 100, rpc, db_engine, publisher, chain_settings)
    try:
        with pytest.raises(WrongChain, match=f"is chain {CHAIN_ID}, not {CHAIN_ID + 100}"):
            indexer.run(lambda: False)
    finally:
        publisher.close()
        rpc.close()
