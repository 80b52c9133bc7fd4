"""``python -m chain_indexer``: follow every configured chain (one thread each) until
SIGTERM/SIGINT. Exits non-zero when a chain stops for good (a reorg deeper than the window,
a node on the wrong chain), with the reason in the log and in ``stride chain status``."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from chain_indexer.heartbeat import write_heartbeat
from chain_indexer.indexer import ChainIndexer
from chain_indexer.metadata_worker import resolve_pending_forever
from chain_indexer.publisher import KafkaPublisher
from core.chain.rpc import Rpc
from core.platform.config import get_settings
from core.platform.db import engine_for
from core.platform.topics import ensure_topics

log = logging.getLogger("chain_indexer")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per RPC call otherwise
    settings = get_settings()
    ensure_topics(settings)
    engine = engine_for(settings.db_url, pool_size=4)
    stopping = threading.Event()
    failures: list[str] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    def follow(chain_id: int, url: str) -> None:
        rpc = Rpc(url, timeout_s=settings.indexer_rpc_timeout_s)
        publisher = KafkaPublisher(settings)
        indexer = ChainIndexer(chain_id, rpc, engine, publisher, settings)
        try:
            indexer.run(stopping.is_set, heartbeat=lambda: write_heartbeat(settings, chain_id))
        except Exception as exc:
            log.exception("chain %d stopped", chain_id)
            failures.append(f"chain {chain_id}: {exc}")
            stopping.set()
        finally:
            publisher.close()
            rpc.close()

    threads = [
        threading.Thread(target=follow, args=(c, u), name=f"chain-{c}", daemon=True)
        for c, u in settings.indexed_chains.items()
    ]
    threads.append(
        threading.Thread(
            target=resolve_pending_forever,
            args=(engine, settings, stopping.is_set),
            name="nft-metadata",
            daemon=True,
        )
    )
    for thread in threads:
        thread.start()
    while not stopping.wait(0.5):
        pass
    for thread in threads:
        thread.join(timeout=10)
    for failure in failures:
        print(f"indexer stopped: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
