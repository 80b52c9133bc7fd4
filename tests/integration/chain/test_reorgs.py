"""Reorg fuzz on a real anvil: the indexer publishes to the real Kafka, the projection agent
(the real Faust worker) writes PostgreSQL; after every reorg the projections equal a
from-scratch reindex of the node's canonical chain, and a rebuild from the projected logs."""

from __future__ import annotations

import random
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.chain.reorg import ReorgTooDeep
from core.platform.config import Settings
from tests.integration.chain.conftest import (
    Node,
    assert_projections_match,
    deploy_samples,
    indexer_of,
    reset,
    start_node,
)

pytestmark = pytest.mark.integration
CHAIN_ID = 31390
DEEP_CHAIN_ID = 31391


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    yield from start_node(CHAIN_ID)


@pytest.fixture(scope="module")
def samples(node: Node) -> SimpleNamespace:
    return deploy_samples(node.w3, "ipfs://bafy/", "http://127.0.0.1:9/meta/")


class Activity:
    """Random valid transactions of every standard (one block each: anvil automines)."""

    def __init__(self, node: Node, c: SimpleNamespace, rng: random.Random) -> None:
        self.w3, self.c, self.rng = node.w3, c, rng
        self.people = node.w3.eth.accounts[1:6]
        self.admin = node.w3.eth.accounts[0]

    def one(self) -> None:
        rng, c, people = self.rng, self.c, self.people
        kind = rng.choice(["mint20", "pay20", "mint721", "move721", "mint1155", "move1155"])
        who, other = rng.sample(people, 2)
        if kind == "mint20":
            c.token.functions.mint(who, rng.randint(1, 10**20)).transact({"from": self.admin})
        elif kind == "pay20":
            balance = c.token.functions.balanceOf(who).call()
            if balance:
                amount = rng.randint(1, balance)
                c.token.functions.transfer(other, amount).transact({"from": who})
        elif kind == "mint721":
            collection = rng.choice([c.ipfs721, c.http721])
            collection.functions.mint(who, rng.randint(1, 2**64)).transact({"from": who})
        elif kind == "move721":
            for collection in (c.ipfs721, c.http721):
                for log in collection.events.Transfer().get_logs(from_block=0)[-5:]:
                    token_id = log["args"]["tokenId"]
                    try:
                        owner = collection.functions.ownerOf(token_id).call()
                    except Exception:  # burned or orphaned by a reorg
                        continue
                    collection.functions.transferFrom(owner, other, token_id).transact(
                        {"from": owner}
                    )
                    return
        elif kind == "mint1155":
            ids = rng.sample(range(1, 8), rng.randint(1, 3))
            amounts = [rng.randint(1, 50) for _ in ids]
            c.multi.functions.mintBatch(who, ids, amounts).transact({"from": who})
        else:
            token_id = rng.randint(1, 7)
            balance = c.multi.functions.balanceOf(who, token_id).call()
            if balance:
                c.multi.functions.safeTransferFrom(
                    who, other, token_id, rng.randint(1, balance), b""
                ).transact({"from": who})

    def blocks(self, count: int) -> None:
        for _ in range(count):
            if self.rng.random() < 0.15:
                self.w3.provider.make_request("evm_mine", [])  # an empty block
            else:
                self.one()


def test_projections_equal_a_reindex_after_random_reorgs(
    node: Node,
    samples: SimpleNamespace,
    db_engine: Engine,
    chain_settings: Settings,
    lake_worker: Settings,
) -> None:
    rng = random.Random(13)
    reset(db_engine, CHAIN_ID)
    with indexer_of(node, db_engine, chain_settings) as indexer:
        fuzz(node, samples, db_engine, indexer, rng)


def fuzz(node: Node, samples: SimpleNamespace, engine: Engine, indexer, rng) -> None:
    db_engine = engine
    activity = Activity(node, samples, rng)
    activity.blocks(15)
    indexer.catch_up()
    assert_projections_match(db_engine, node)
    for round_ in range(20):
        depth = rng.randint(1, 12)
        if round_ % 3 == 2:
            # anvil_reorg: the head keeps its height, the last `depth` blocks get new hashes
            # and lose their transactions.
            activity.blocks(depth)
            indexer.catch_up()
            node.rpc("anvil_reorg", [depth, []])
        else:
            snapshot = node.rpc("evm_snapshot", [])
            activity.blocks(depth)
            indexer.catch_up()
            assert node.rpc("evm_revert", [snapshot])
            activity.blocks(rng.randint(max(0, depth - 3), depth + 3))  # other transactions
        result = indexer.catch_up()
        assert result.indexed_block == node.w3.eth.block_number
        assert_projections_match(db_engine, node)
    with db_engine.connect() as conn:
        orphaned = conn.execute(
            text("SELECT count(*) FROM chain_logs WHERE chain_id = :c AND NOT canonical"),
            {"c": CHAIN_ID},
        ).scalar_one()
    assert orphaned > 0  # the reorgs did take logs back


def test_a_reorg_deeper_than_the_window_stops_with_a_clear_error(
    db_engine: Engine, chain_settings: Settings
) -> None:
    settings = chain_settings.model_copy(update={"indexer_reorg_window": 3})
    for deep in start_node(DEEP_CHAIN_ID):
        reset(db_engine, DEEP_CHAIN_ID)
        snapshot = deep.rpc("evm_snapshot", [])
        for _ in range(8):
            deep.rpc("evm_mine", [])
        with indexer_of(deep, db_engine, settings) as indexer:
            indexer.catch_up()
            assert deep.rpc("evm_revert", [snapshot])
            for _ in range(10):
                deep.rpc("evm_mine", [])
            with pytest.raises(ReorgTooDeep, match=r"below block 6.*STRIDE_INDEXER_REORG_WINDOW"):
                indexer.step()
        # Nothing was rolled back: the kept window is untouched for an operator to inspect.
        with db_engine.connect() as conn:
            kept = conn.execute(
                text("SELECT indexed_block FROM chain_cursors WHERE chain_id = :c"),
                {"c": DEEP_CHAIN_ID},
            ).scalar_one()
        assert kept == 8
