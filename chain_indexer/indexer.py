"""One chain's follower: poll the head, index the next block range, detect and undo reorgs.

A step (:meth:`ChainIndexer.step`):

1. publish what the outbox still holds (a previous run's step committed but not yet sent,
   or a publish that failed);
2. read the head; if the node's block at the stored tip's height has another hash, the
   chain forked: find the common ancestor in the window (:mod:`core.chain.reorg`), commit
   the rollback with a retraction of every orphaned log, publish, and step again;
3. otherwise fetch the headers of the next range (each must extend the previous one;
   about ``TARGET_LOGS_PER_RANGE`` logs at the last range's density), its logs with one
   ``eth_getLogs`` (topic0 in the published events), and the range's last header once
   more: a log whose block hash is not the header's, or a last header that changed
   meanwhile, means the chain moved under us; the step is redone;
4. commit headers, records and the cursor in one transaction (:mod:`chain_indexer.store`),
   wait until the broker acknowledged the previous range (then delete it from the
   outbox), and start publishing this one: the next step fetches, decodes and commits
   while Kafka acknowledges. At the head, and before a rollback, the step waits for the
   acknowledgement itself. The order of the records on Kafka is the outbox's either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from chain_indexer import store
from chain_indexer.publisher import Publisher
from core.chain.decode import decode_range, indexed_topics
from core.chain.reorg import BlockRef, ReorgTooDeep, common_ancestor, first_break, next_range
from core.chain.rpc import Rpc
from core.platform.config import ChainSettings

log = logging.getLogger(__name__)
OUTBOX_BATCH = 5000
TARGET_LOGS_PER_RANGE = 10_000  # logs per eth_getLogs range, at the last range's density
FIRST_RANGE_BLOCKS = 100  # before any density is known
ANCESTOR_CHUNK = 32  # window blocks asked per round trip while walking back


@dataclass(frozen=True)
class StepResult:
    indexed_block: int | None
    head: int
    published: int = 0
    retracted: int = 0
    caught_up: bool = False
    moved: bool = False  # the chain changed during the step: redo it


class WrongChain(RuntimeError):
    """The node serves another chain than the one configured for it."""


class NodeInconsistent(RuntimeError):
    """The node's answers contradict each other (a head above a block it does not have);
    retried like an RPC error, and shown as the last error meanwhile."""


class ChainIndexer:
    def __init__(
        self,
        chain_id: int,
        rpc: Rpc,
        engine: Engine,
        publisher: Publisher,
        settings: ChainSettings,
    ) -> None:
        self.chain_id = chain_id
        self.rpc = rpc
        self.engine = engine
        self.publisher = publisher
        self.settings = settings
        self.topics = indexed_topics()
        self.head_since = datetime.now(UTC)
        # The range being published while the next one is fetched: (acks, last outbox id,
        # records).
        self._inflight: tuple[Future[None], int, int] | None = None
        self._logs_per_block: float | None = None

    def check_chain_id(self) -> None:
        actual = self.rpc.chain_id()
        if actual != self.chain_id:
            raise WrongChain(
                f"the node at {self.rpc.url} is chain {actual}, not {self.chain_id}: "
                "fix STRIDE_INDEXER_CHAINS"
            )

    def drain_outbox(self) -> int:
        """Publish what the outbox holds for this chain (a previous run's or a failed
        publish's records), oldest first, each batch deleted once acknowledged."""
        self._settle()
        sent = 0
        while rows := store.pending_outbox(self.engine, self.chain_id, OUTBOX_BATCH):
            self.publisher.publish([(k.encode(), p.encode()) for _, k, p in rows])
            store.delete_outbox(self.engine, self.chain_id, rows[-1][0])
            sent += len(rows)
        return sent

    def _settle(self) -> int:
        """Wait for the range being published, then delete its records from the outbox.
        A failed publish leaves them there: the next drain publishes them again."""
        if self._inflight is None:
            return 0
        future, last_id, count = self._inflight
        self._inflight = None
        future.result()
        store.delete_outbox(self.engine, self.chain_id, last_id)
        return count

    def _range_blocks(self) -> int:
        """Blocks of the next range: about ``TARGET_LOGS_PER_RANGE`` logs at the density of
        the last one, within ``indexer_batch_blocks``: sparse chains in big ranges (few
        round trips), dense ones in ranges small enough to publish one while the next is
        fetched."""
        most = self.settings.indexer_batch_blocks
        if self._logs_per_block is None:  # nothing known yet: a first range of moderate size
            return min(most, FIRST_RANGE_BLOCKS)
        if self._logs_per_block <= 0:
            return most
        return max(1, min(most, int(TARGET_LOGS_PER_RANGE / self._logs_per_block)))

    def step(self) -> StepResult:
        if self._inflight is None:
            self.drain_outbox()
        state = store.load_state(self.engine, self.chain_id)
        head = self.rpc.block_number()
        self.head_since = store.note_head(self.engine, self.chain_id, head, datetime.now(UTC))
        tip = state.tip
        if tip is not None:
            (current,) = self.rpc.blocks([tip.number])
            if current is None or current.hash != tip.hash:
                published = self._settle()
                retracted = self._roll_back(state.window)
                return StepResult(
                    tip.number, head, published=published, retracted=retracted, moved=True
                )
        planned = next_range(
            state.indexed_block if tip is not None else None,
            head,
            confirmations=self.settings.indexer_confirmations,
            batch_blocks=self._range_blocks(),
            start_block=self.settings.indexer_start_block,
        )
        if planned is None:
            return StepResult(state.indexed_block, head, published=self._settle(), caught_up=True)
        first, last = planned
        headers = self.rpc.blocks(range(first, last + 1))
        present = [h for h in headers if h is not None]
        if len(present) != len(headers):
            missing = next(n for n, h in zip(range(first, last + 1), headers, strict=True) if not h)
            raise NodeInconsistent(
                f"chain {self.chain_id}: the node reports head {head} but has no block {missing}"
            )
        if first_break(tip, present) is not None:
            return StepResult(state.indexed_block, head, moved=True)
        raw_logs = self.rpc.logs(first, last, self.topics)
        (again,) = self.rpc.blocks([last])
        if again is None or again.hash != present[-1].hash:
            return StepResult(state.indexed_block, head, moved=True)
        logs = decode_range(raw_logs, present, self.chain_id)
        if logs is None:  # a log of a block hash that is not the header's
            return StepResult(state.indexed_block, head, moved=True)
        self._logs_per_block = len(raw_logs) / len(present)
        keep_from = last - self.settings.indexer_reorg_window + 1
        last_id = store.commit_forward(
            self.engine, self.chain_id, present, logs, keep_from=keep_from
        )
        published = self._settle()  # the previous range, acknowledged meanwhile
        if last_id is not None:
            kv = [(e.key, e.payload.encode()) for e in logs]
            self._inflight = (self.publisher.start_publish(kv), last_id, len(kv))
        caught_up = last >= head
        if caught_up:  # at the head nothing is fetched next: wait for the broker now
            published += self._settle()
        return StepResult(last, head, published=published, caught_up=caught_up)

    def _roll_back(self, window: list[BlockRef]) -> int:
        canonical: dict[int, str] = {}
        ancestor = None
        for offset in range(0, len(window), ANCESTOR_CHUNK):
            chunk = window[offset : offset + ANCESTOR_CHUNK]
            for block, node_block in zip(
                chunk, self.rpc.blocks([b.number for b in chunk]), strict=True
            ):
                if node_block is not None:
                    canonical[block.number] = node_block.hash
            ancestor = common_ancestor(chunk, canonical)
            if ancestor is not None:
                break
        if ancestor is None:
            oldest = window[-1].number
            raise ReorgTooDeep(
                f"chain {self.chain_id}: the node's chain forked below block {oldest}, the "
                f"oldest of the {len(window)} blocks the indexer keeps "
                "(STRIDE_INDEXER_REORG_WINDOW); its projections may hold orphaned logs. "
                "Raise the window or reindex: `stride chain reset CHAIN_ID`, then restart "
                "the indexer and the worker"
            )
        retracted = store.commit_rollback(self.engine, self.chain_id, ancestor)
        log.warning(
            "chain %d: reorg, common ancestor %d (tip was %d), %d logs retracted",
            self.chain_id,
            ancestor,
            window[0].number,
            retracted,
        )
        self.drain_outbox()
        return retracted

    def catch_up(self, max_steps: int = 10_000) -> StepResult:
        """Step until the indexer is at ``head - confirmations`` (tests, benchmarks)."""
        for _ in range(max_steps):
            result = self.step()
            if result.caught_up:
                return result
        raise RuntimeError(f"chain {self.chain_id}: not caught up after {max_steps} steps")

    def run(self, stop: Callable[[], bool], heartbeat: Callable[[], None] | None = None) -> None:
        """Follow the chain until ``stop()``; transient errors are recorded and retried with
        backoff, a reorg deeper than the window stops (raises)."""
        backoff = 0.0
        stalled_reported = False
        checked = False
        while not stop():
            try:
                if not checked:
                    self.check_chain_id()  # a node down at start is retried like any step
                    checked = True
                result = self.step()
            except (ReorgTooDeep, WrongChain) as exc:
                store.record_error(self.engine, self.chain_id, str(exc))
                raise
            except Exception as exc:
                backoff = min(30.0, max(0.5, backoff * 2))
                message = f"{exc.__class__.__name__}: {exc}"
                log.warning("chain %d: %s; retrying in %.1fs", self.chain_id, message, backoff)
                try:
                    store.record_error(self.engine, self.chain_id, message)
                except Exception:
                    log.exception("chain %d: could not record the error", self.chain_id)
                time.sleep(backoff)  # backoff before retrying a failed RPC/database step
                continue
            if backoff:
                backoff = 0.0
                store.record_error(self.engine, self.chain_id, None)
            stalled_reported = self._report_stall(stalled_reported)
            if heartbeat is not None:
                heartbeat()
            if result.caught_up:
                time.sleep(self.settings.indexer_poll_s)  # at the head: poll interval

    def _report_stall(self, reported: bool) -> bool:
        """Log once when the head has not moved for ``indexer_stall_after_s`` (shown by
        ``stride chain status`` from the cursor's ``head_changed_at``)."""
        stalled_s = (datetime.now(UTC) - self.head_since).total_seconds()
        if stalled_s <= self.settings.indexer_stall_after_s:
            return False
        if not reported:
            log.warning("chain %d: head stalled, unchanged for %.0fs", self.chain_id, stalled_s)
        return True
