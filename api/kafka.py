"""The one aiokafka producer of an API process (acks=all), started lazily, closed at shutdown.

``produce`` returns only when every record is acknowledged by the broker; any failure or
timeout raises :class:`core.platform.errors.Unavailable` (answered 503 with ``Retry-After``
by :mod:`api.errors`), so a caller never reports as written what was not.
Many records are grouped by partition and handed to aiokafka as whole batches
(:mod:`core.platform.kafka_batches`, as the stream agents publish): one ``send``
per record costs ten times more CPU, and the API shares a small machine with the broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Request
from kafka.errors import KafkaError as AdminError

from api.deps import SettingsDep, per_app
from api.errors import error_responses
from core.platform.config import Settings, get_settings
from core.platform.errors import Unavailable
from core.platform.kafka_batches import queue_batches
from core.platform.kafka_security import aiokafka_options
from core.platform.observability import REQUEST_ID_HEADER, request_id_var
from core.platform.topics import ensure_topics

log = logging.getLogger(__name__)


RETRY_AFTER_S = 5
KAFKA_ERRORS = error_responses(
    {503: "Kafka unreachable: retry the same request unchanged after Retry-After seconds"}
)


class KafkaUnavailable(RuntimeError):
    """The broker did not acknowledge the records (down, unreachable or too slow)."""


# Below this many records a request's records go one by one through ``send``: then they
# share the broker round trips of concurrent requests, which costs less than a round trip
# per request. From it, whole batches cost far less CPU per record (measured both ways).
WHOLE_BATCHES_FROM = 32


async def _queue(
    producer: AIOKafkaProducer, topic: str, records: Sequence[tuple[bytes, bytes]]
) -> list[asyncio.Future[object]]:
    """Queue ``records`` for sending, each partition's in order; the futures of their acks.
    Every record carries the request id in its ``x-request-id`` header (the workers log it)."""
    request_id = request_id_var.get()
    headers = [(REQUEST_ID_HEADER, request_id.encode())] if request_id else []
    if len(records) < WHOLE_BATCHES_FROM:
        return [await producer.send(topic, value=v, key=k, headers=headers) for k, v in records]
    return await queue_batches(producer, topic, records, headers)


class EventProducer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task] = set()  # failed producers being closed

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
                    **aiokafka_options(s),
                    client_id="stride-api",
                    acks="all",
                    # Idempotent: a retried batch is written once (producer id + sequence
                    # numbers checked by the broker), so a timeout never duplicates events.
                    enable_idempotence=True,
                    linger_ms=2,
                    max_batch_size=512 * 1024,
                    max_request_size=2 * 1024 * 1024,
                    request_timeout_ms=timeout_ms,
                )
                try:
                    await asyncio.wait_for(producer.start(), s.kafka_produce_timeout_s)
                    await asyncio.to_thread(ensure_topics, s)
                except (KafkaError, AdminError, OSError, TimeoutError) as exc:
                    await producer.stop()
                    message = f"cannot connect to Kafka at {s.kafka_bootstrap}"
                    raise KafkaUnavailable(message) from exc
                self._producer = producer
        return self._producer

    async def produce(
        self,
        topic: str,
        records: Sequence[tuple[bytes, bytes]],
        *,
        retry: str = "Retry the request unchanged.",
    ) -> None:
        """Send ``(key, value)`` records and wait until the broker acknowledged all of them.

        When it did not, raises :class:`Unavailable` (503, ``Retry-After``) whose message is
        the cause followed by ``retry``: what the client does about it, in its own words.
        """
        try:
            await self._produce(topic, records)
        except KafkaUnavailable as exc:
            raise Unavailable(f"{exc}. {retry}", retry_after_s=RETRY_AFTER_S) from exc

    async def _produce(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        producer = await self._started()
        try:
            futures = await _queue(producer, topic, records)
            await asyncio.wait_for(asyncio.gather(*futures), self._settings.kafka_produce_timeout_s)
        except (KafkaError, TimeoutError) as exc:
            self._discard(producer)
            raise KafkaUnavailable(f"Kafka did not acknowledge the events ({exc!r})") from exc

    def _discard(self, producer: AIOKafkaProducer) -> None:
        """Replace a producer whose send failed; the next request starts a new one.

        After a batch times out (broker restarted or unreachable), aiokafka's idempotent
        producer keeps its producer id and sequence numbers while the broker may not have
        the batch: every later send then fails with OutOfOrderSequenceNumber, for good
        (the Java client bumps its epoch; aiokafka does not). A new producer gets a new
        producer id. The old one is closed in the background, bounded by the produce
        timeout; a batch it still delivers was answered 503 and carries event ids, so the
        client's retry is deduplicated.
        """
        if self._producer is not producer:
            return
        self._producer = None
        task = asyncio.get_running_loop().create_task(self._close_quietly(producer))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_quietly(self, producer: AIOKafkaProducer) -> None:
        try:
            await asyncio.wait_for(producer.stop(), self._settings.kafka_produce_timeout_s)
        except (KafkaError, TimeoutError, OSError) as exc:
            log.warning("closing a failed Kafka producer: %r", exc)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


def event_producer(request: Request, settings: SettingsDep) -> EventProducer:
    """The process's producer (created on first use, so it also works without lifespan)."""
    return per_app(request, "event_producer", lambda: EventProducer(settings))


ProducerDep = Annotated[EventProducer, Depends(event_producer)]


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
