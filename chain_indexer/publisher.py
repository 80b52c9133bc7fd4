"""Kafka out: the outbox's records to ``chain.logs.v1``, in order per key, acknowledged by
every in-sync replica before they leave the outbox.

aiokafka on a private event loop in its own thread. Records are grouped by partition (the
same murmur2 partitioner as ``send``) and handed over as whole batches by the platform's one
plumbing for it, :mod:`core.platform.kafka_batches`: one ``send`` per record cost ~15 µs of
Python per log here, a batch append a few. aiokafka keeps at most one
batch in flight per partition, so a retried batch never overtakes the next one and one
contract's logs (one key, one partition) stay in order. :meth:`KafkaPublisher.start_publish`
returns at once with a future, so the indexer fetches and commits its next range while the
broker acknowledges this one (it waits for that future before publishing the next).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Protocol

from aiokafka import AIOKafkaProducer

from core.platform.config import KafkaSettings
from core.platform.kafka_batches import queue_batches
from core.platform.kafka_security import aiokafka_options
from core.platform.topics import CHAIN_LOGS


class Publisher(Protocol):
    def publish(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Send every (key, value) and return once the broker acknowledged all of them."""

    def start_publish(self, records: Sequence[tuple[bytes, bytes]]) -> Future[None]:
        """Start sending ``records``; the future completes once all are acknowledged."""


class KafkaPublisher:
    def __init__(
        self, kafka: KafkaSettings, timeout_s: float = 30.0, topic: str = CHAIN_LOGS
    ) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="chain-publisher", daemon=True
        )
        self._thread.start()

        async def start() -> AIOKafkaProducer:
            producer = AIOKafkaProducer(
                **aiokafka_options(kafka),
                acks="all",
                linger_ms=5,
                max_batch_size=1 << 20,
                max_request_size=4 << 20,
                request_timeout_ms=int(timeout_s * 1000),
                client_id="stride-chain-indexer",
            )
            await producer.start()
            return producer

        try:
            self._producer = asyncio.run_coroutine_threadsafe(start(), self._loop).result()
        except BaseException:
            self._stop_loop()
            raise

    async def _send_all(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        pending = await queue_batches(self._producer, self.topic, records)
        await asyncio.wait_for(asyncio.gather(*pending), self.timeout_s)

    def start_publish(self, records: Sequence[tuple[bytes, bytes]]) -> Future[None]:
        return asyncio.run_coroutine_threadsafe(self._send_all(records), self._loop)

    def publish(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        self.start_publish(records).result()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def close(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._producer.stop(), self._loop).result(
                self.timeout_s
            )
        finally:
            self._stop_loop()
