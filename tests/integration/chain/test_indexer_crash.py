"""``kill -9`` of the indexer process mid-stream, several times, while transactions keep
coming: after the last restart the projections equal a from-scratch reindex (no gap, and
no duplicate counted twice). Also the two crash points of the outbox, deterministically."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from types import SimpleNamespace

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from chain_indexer.indexer import ChainIndexer
from chain_indexer.publisher import KafkaPublisher
from core.chain.rpc import Rpc
from core.platform.config import REPO_ROOT, Settings
from tests.integration.chain.conftest import (
    Node,
    assert_projections_match,
    deploy_samples,
    reset,
    start_node,
    wait_for,
)

pytestmark = pytest.mark.integration
CHAIN_ID = 31392
OUTBOX_CHAIN_ID = 31393


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    yield from start_node(CHAIN_ID)


def traffic(node: Node, c: SimpleNamespace, rng: random.Random, count: int) -> None:
    admin, *people = node.w3.eth.accounts[:6]
    for _ in range(count):
        who, other = rng.sample(people, 2)
        if rng.random() < 0.5:
            c.token.functions.mint(who, rng.randint(1, 10**18)).transact({"from": admin})
        else:
            c.multi.functions.mint(who, rng.randint(1, 4), rng.randint(1, 9)).transact(
                {"from": who}
            )
            balance = c.multi.functions.balanceOf(who, 1).call()
            if balance:
                c.multi.functions.safeTransferFrom(who, other, 1, balance, b"").transact(
                    {"from": who}
                )


def indexed_block(engine: Engine, chain_id: int) -> int:
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT indexed_block FROM chain_cursors WHERE chain_id = :c"), {"c": chain_id}
        ).scalar()
    return -1 if value is None else int(value)


def start_indexer(node: Node, settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STRIDE_INDEXER_CHAINS": f"{node.chain_id}={node.url}",
        "STRIDE_INDEXER_BATCH_BLOCKS": "3",
        "STRIDE_INDEXER_POLL_S": "0.05",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "chain_indexer"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_kill_9_of_the_indexer_mid_stream_loses_and_doubles_nothing(
    node: Node, db_engine: Engine, chain_settings: Settings, lake_worker: Settings
) -> None:
    rng = random.Random(5)
    samples = deploy_samples(node.w3, "ipfs://bafy/", "http://127.0.0.1:9/meta/")
    reset(db_engine, CHAIN_ID)
    traffic(node, samples, rng, 60)  # a backlog: the indexer works through it 3 blocks a step
    for _ in range(3):
        process = start_indexer(node, chain_settings)
        try:
            before = indexed_block(db_engine, CHAIN_ID)
            # Never past the head: a fast indexer may have caught up, and no block comes
            # while it is waited for (the blocks come while it is dead, below).
            target = min(before + rng.randint(4, 25), node.w3.eth.block_number)
            wait_for(
                lambda t=target: indexed_block(db_engine, CHAIN_ID) >= t,
                lambda t=target: f"indexer at {indexed_block(db_engine, CHAIN_ID)} of {t}",
            )
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        traffic(node, samples, rng, 5)  # transactions keep coming while it is down
    head = node.w3.eth.block_number
    assert indexed_block(db_engine, CHAIN_ID) < head  # the kills did land mid-stream
    process = start_indexer(node, chain_settings)
    try:
        wait_for(
            lambda: indexed_block(db_engine, CHAIN_ID) >= head,
            lambda: f"indexer at {indexed_block(db_engine, CHAIN_ID)} of {head}",
        )
        assert_projections_match(db_engine, node)
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0  # a stop signal ends it cleanly


class DyingPublisher:
    """The real Kafka publisher, which "dies" (raises) at a chosen call."""

    def __init__(self, inner: KafkaPublisher, die_at_call: int, after_send: bool) -> None:
        self.inner, self.die_at, self.after_send, self.calls = inner, die_at_call, after_send, 0

    def publish(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        self.calls += 1
        if self.calls == self.die_at and not self.after_send:
            raise KeyboardInterrupt("killed before the send")
        self.inner.publish(records)
        if self.calls == self.die_at:
            raise KeyboardInterrupt("killed after the send, before the outbox delete")

    def start_publish(self, records: Sequence[tuple[bytes, bytes]]) -> Future[None]:
        """The pipelined publish: the same deaths, surfacing when the indexer waits for it."""
        future: Future[None] = Future()
        try:
            self.publish(records)
            future.set_result(None)
        except KeyboardInterrupt as exc:
            future.set_exception(exc)
        return future


def test_a_crash_at_either_side_of_a_publish_is_absorbed(
    db_engine: Engine, chain_settings: Settings, lake_worker: Settings
) -> None:
    rng = random.Random(11)
    for other in start_node(OUTBOX_CHAIN_ID):
        samples = deploy_samples(other.w3, "ipfs://bafy/", "http://127.0.0.1:9/meta/")
        reset(db_engine, OUTBOX_CHAIN_ID)
        kafka = KafkaPublisher(chain_settings)
        rpc = Rpc(other.url)
        try:
            for round_, (call, after_send) in enumerate(
                ((1, False), (1, True), (2, True), (1, True), (2, False))
            ):
                traffic(other, samples, rng, 6)
                dying = DyingPublisher(kafka, call, after_send)
                indexer = ChainIndexer(OUTBOX_CHAIN_ID, rpc, db_engine, dying, chain_settings)
                with pytest.raises(KeyboardInterrupt):
                    indexer.catch_up()
                if round_ == 3:  # a reorg while the outbox still holds records
                    other.rpc("anvil_reorg", [2, []])
            ChainIndexer(OUTBOX_CHAIN_ID, rpc, db_engine, kafka, chain_settings).catch_up()
            assert_projections_match(db_engine, other)
        finally:
            kafka.close()
            rpc.close()


AGENT_CHAIN_ID = 31397


def scoring_worker_pids(settings: Settings) -> list[int]:
    beats = (settings.state_dir / "run" / "heartbeats").glob(f"{settings.streams_app_id}.*.json")
    return [int(path.name.split(".")[-2]) for path in beats]


def test_kill_9_of_the_projection_agent_mid_stream_loses_and_doubles_nothing(
    db_engine: Engine, chain_settings: Settings, lake_worker: Settings, stack
) -> None:
    rng = random.Random(17)
    for other in start_node(AGENT_CHAIN_ID):
        samples = deploy_samples(other.w3, "ipfs://bafy/", "http://127.0.0.1:9/meta/")
        reset(db_engine, AGENT_CHAIN_ID)
        stop = threading.Event()
        kafka = KafkaPublisher(chain_settings)
        rpc = Rpc(other.url)
        settings = chain_settings.model_copy(update={"indexer_poll_s": 0.05})
        follower = ChainIndexer(AGENT_CHAIN_ID, rpc, db_engine, kafka, settings)
        thread = threading.Thread(target=follower.run, args=(stop.is_set,), daemon=True)
        thread.start()
        try:
            traffic(other, samples, rng, 20)
            victim = rng.choice(scoring_worker_pids(lake_worker))
            os.kill(victim, signal.SIGKILL)  # the worker service goes down with it
            traffic(other, samples, rng, 20)  # logs keep coming while no agent runs
            stack.down(["worker"], report=lambda _m: None)  # as an operator restarts it
            stack.up(["worker"], report=lambda _m: None)
            traffic(other, samples, rng, 10)
            head = other.w3.eth.block_number
            wait_for(
                lambda h=head: indexed_block(db_engine, AGENT_CHAIN_ID) >= h,
                lambda h=head: f"indexer at {indexed_block(db_engine, AGENT_CHAIN_ID)} of {h}",
            )
            assert_projections_match(db_engine, other)
        finally:
            stop.set()
            thread.join(timeout=30)
            kafka.close()
            rpc.close()
