"""Kafka out: the outbox's records to ``chain.logs.v1``, in order per key, acknowledged by
every in-sync replica before they leave the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kafka import KafkaProducer

from core.platform.topics import CHAIN_LOGS


class Publisher(Protocol):
    def publish(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Send every (key, value) and return once the broker acknowledged all of them."""


class KafkaPublisher:
    def __init__(self, bootstrap: str, timeout_s: float = 30.0, topic: str = CHAIN_LOGS) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        # One request in flight per broker: a retried batch cannot overtake the next one,
        # so one contract's logs (one key, one partition) stay in order.
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            retries=10,
            max_in_flight_requests_per_connection=1,
            linger_ms=5,
            client_id="stride-chain-indexer",
        )

    def publish(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        futures = [self._producer.send(self.topic, key=k, value=v) for k, v in records]
        self._producer.flush(timeout=self.timeout_s)
        for future in futures:
            future.get(timeout=self.timeout_s)  # raises the send's error, if any

    def close(self) -> None:
        self._producer.close(timeout=5)
