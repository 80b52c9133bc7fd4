"""The indexer's second duty: contract facts and NFT metadata for what the projections hold.

It reads the projections themselves (contracts without facts, NFTs without a metadata row),
so nothing is lost when a process dies between indexing and fetching: the next pass finds
the same gaps. Failed fetches are retried when their backoff is over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from core.chain import facts, metadata
from core.chain.facts import EthCall
from core.chain.rpc import Rpc, RpcError
from core.platform.config import Settings

log = logging.getLogger(__name__)
IDLE_S = 1.0


def eth_call_of(rpc: Rpc) -> EthCall:
    """``eth_call`` with a revert (or any node error) as None."""

    def call(to: str, data: str) -> str | None:
        try:
            return rpc.eth_call(to, data)
        except RpcError:
            return None

    return call


def one_pass(engine: Engine, settings: Settings, rpcs: dict[int, Rpc]) -> int:
    """Fetch missing facts and due metadata once; returns how many items were handled."""
    done = 0
    missing = [(c, a) for c, a in facts.missing_contracts(engine) if c in rpcs]
    for chain_id, contract in missing:
        facts.store_facts(engine, chain_id, [facts.probe(eth_call_of(rpcs[chain_id]), contract)])
        done += 1
    metadata.queue_missing(engine)
    metadata.requeue_updated(engine)
    for chain_id, contract, token_id, standard in metadata.due(engine, datetime.now(UTC)):
        if chain_id not in rpcs:
            continue
        outcome = metadata.resolve_and_store(
            engine,
            eth_call_of(rpcs[chain_id]),
            chain_id,
            contract,
            token_id,
            standard,
            settings,
            datetime.now(UTC),
        )
        if isinstance(outcome, metadata.MetadataError):
            log.info("metadata of %s #%d on %d: %s", contract, token_id, chain_id, outcome)
        done += 1
    return done


def resolve_pending_forever(engine: Engine, settings: Settings, stop: Callable[[], bool]) -> None:
    rpcs = {
        c: Rpc(u, timeout_s=settings.indexer_rpc_timeout_s)
        for c, u in settings.indexed_chains.items()
    }
    while not stop():
        try:
            done = one_pass(engine, settings, rpcs)
        except Exception:
            log.exception("metadata pass failed; retrying")
            done = 0
        if not done:
            stop_wait(stop, IDLE_S)


def stop_wait(stop: Callable[[], bool], seconds: float) -> None:
    """Idle between passes, waking early when asked to stop."""
    deadline = time.monotonic() + seconds
    while not stop() and time.monotonic() < deadline:
        time.sleep(0.1)  # idle poll between metadata passes
