"""The one aiokafka producer of an API process (acks=all), started lazily, closed at shutdown.

``produce`` returns only when every record is acknowledged by the broker; any failure or
timeout raises :class:`KafkaUnavailable`, so a caller never reports as written what was not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from kafka.errors import KafkaError as AdminError

from core.config import Settings, get_settings
from core.topics import ensure_topics

log = logging.getLogger(__name__)


class KafkaUnavailable(RuntimeError):
    """The broker did not acknowledge the records (down, unreachable or too slow)."""


class EventProducer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        """Start the producer and create missing topics (idempotent)."""
        await self._started()

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                s = self._settings
                timeout_ms = int(s.kafka_produce_timeout_s * 1000)
                producer = AIOKafkaProducer(
                    bootstrap_servers=s.kafka_bootstrap,
                    client_id="stride-api",
                    acks="all",
                    linger_ms=2,
                    max_batch_size=512 * 1024,
                    max_request_size=2 * 1024 * 1024,
                    request_timeout_ms=timeout_ms,
                )
                try:
                    await asyncio.wait_for(producer.start(), s.kafka_produce_timeout_s)
                    await asyncio.to_thread(
                        ensure_topics,
                        s.kafka_bootstrap,
                        s.kafka_topic_partitions,
                        s.kafka_replication_factor,
                    )
                except (KafkaError, AdminError, OSError, TimeoutError) as exc:
                    await producer.stop()
                    message = f"cannot connect to Kafka at {s.kafka_bootstrap}"
                    raise KafkaUnavailable(message) from exc
                self._producer = producer
        return self._producer

    async def produce(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Send ``(key, value)`` records and wait until the broker acknowledged all of them."""
        producer = await self._started()
        try:
            futures = [await producer.send(topic, value=v, key=k) for k, v in records]
            await asyncio.wait_for(asyncio.gather(*futures), self._settings.kafka_produce_timeout_s)
        except (KafkaError, TimeoutError) as exc:
            raise KafkaUnavailable(f"Kafka did not acknowledge the events ({exc!r})") from exc

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


def event_producer(request: Request) -> EventProducer:
    """The process's producer (created on first use, so it also works without lifespan)."""
    state = request.app.state
    producer = getattr(state, "event_producer", None)
    if producer is None:
        producer = state.event_producer = EventProducer(get_settings())
    return producer


async def _warm_up(producer: EventProducer) -> None:
    try:
        await producer.connect()
    except KafkaUnavailable as exc:
        log.warning("%s; will retry on the first event", exc)


@asynccontextmanager
async def kafka_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Connect and create the topics in the background at startup (the API starts even when
    Kafka is down: /ready reports it, event routes answer 503); close at shutdown."""
    producer = app.state.event_producer = EventProducer(get_settings())
    warm_up = asyncio.create_task(_warm_up(producer))
    try:
        yield
    finally:
        warm_up.cancel()
        await producer.close()
