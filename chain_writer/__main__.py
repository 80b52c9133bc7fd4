"""``python -m chain_writer``: the chain writer of one chain (``STRIDE_WRITER_CHAIN_ID``,
default the local anvil) until SIGTERM/SIGINT. One process per chain: it owns the chain's
sender and its nonces. Readiness is a heartbeat file per chain, written after each pass."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time

from chain_indexer.publisher import KafkaPublisher
from chain_writer.writer import ChainWriter, WriterConfig
from core.chain.rpc import Rpc
from core.chain.signer import signer_from_settings
from core.platform.config import Settings, get_settings
from core.platform.db import engine_for
from core.platform.observability import serve_metrics
from core.platform.topics import REWARD_OUTCOMES, ensure_topics

log = logging.getLogger("chain_writer")
MAX_AGE_S = 10.0


def write_heartbeat(settings: Settings, chain_id: int) -> None:
    path = settings.state_dir / "run" / "heartbeats" / f"writer.{chain_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "at": time.time()}))
    tmp.replace(path)


def writer_problem(settings: Settings) -> str | None:
    """None when the writer completed a pass within ``MAX_AGE_S``."""
    chain_id = settings.writer_chain
    path = settings.state_dir / "run" / "heartbeats" / f"writer.{chain_id}.json"
    try:
        beat = json.loads(path.read_text())
    except (OSError, ValueError):
        return f"chain {chain_id}: the writer has not completed a pass yet"
    age = time.time() - float(beat["at"])
    if age > MAX_AGE_S:
        return f"chain {chain_id}: no writer pass for {age:.0f}s"
    return None


def distributor_address(settings: Settings, chain_id: int) -> str:
    if settings.writer_distributor_address:
        return settings.writer_distributor_address
    from contracts.deploy import load_deployment  # web3: only when the address is not set

    deployment = load_deployment(chain_id, settings.deployments_dir)
    if deployment is None or "StrideRewardsDistributor" not in deployment.contracts:
        raise SystemExit(
            f"no StrideRewardsDistributor recorded for chain {chain_id}: run "
            "`stride contracts deploy` (or `stride up anvil` locally)"
        )
    return deployment.address("StrideRewardsDistributor")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = get_settings()
    chain_id = settings.writer_chain
    ensure_topics(settings)
    rpc = Rpc(settings.writer_rpc, timeout_s=settings.indexer_rpc_timeout_s)
    if rpc.chain_id() != chain_id:
        raise SystemExit(f"{settings.writer_rpc} serves chain {rpc.chain_id()}, not {chain_id}")
    signer = signer_from_settings(settings)
    config = WriterConfig.from_settings(settings, chain_id, distributor_address(settings, chain_id))
    engine = engine_for(settings.db_url, pool_size=4)
    publisher = KafkaPublisher(settings, topic=REWARD_OUTCOMES)
    if not serve_metrics(settings.metrics_host, settings.writer_metrics_port):
        log.warning("metrics port %d is taken; no /metrics", settings.writer_metrics_port)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    writer = ChainWriter(engine, rpc, signer, config, publish=publisher.publish)
    log.info("chain %d: writing as %s through %s", chain_id, signer.address, config.distributor)
    try:
        writer.run(stopping.is_set, heartbeat=lambda: write_heartbeat(settings, chain_id))
    finally:
        publisher.close()
        rpc.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
