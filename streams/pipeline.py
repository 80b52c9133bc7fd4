"""The one stream plumbing every agent uses: batch, validate, dead-letter, write, publish, ack.

An agent declares a :class:`Pipeline` (its topic's contract, its dead-letter topic, the
pure-ish domain function that writes a batch durably, what to publish after the write) and
runs it with :func:`run`. Per batch (``stream.take_events(n, within=s)``):

1. every message gets an extra reference (``incref``), so that Faust cannot commit its offset
   before this batch is durable, even if the agent dies;
2. each message is decoded and validated against the contract; one that fails goes to the
   dead-letter topic as a ``DeadLetter`` v1 with its reason and original bytes;
3. the valid ones go to ``write`` in a worker thread (one database transaction or one
   Delta commit), retried with backoff while the database, lake or broker is down;
4. the records ``publish`` derives from the outcome are sent and acknowledged by the broker;
5. only then is every message of the batch acked, so its offsets can be committed.

A crash anywhere before 5 replays the batch after a restart; the writes are keyed by event,
sample or command id, so the replay changes nothing that was already written.

Pipelining: while batch n is being written (the database works, the event loop would
idle), the agent already receives and validates batch n+1. At most one write is in flight,
so batches still commit and ack in offset order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiokafka.errors import KafkaError
from faust import EventT, StreamT
from prometheus_client import Counter, Histogram
from sqlalchemy.exc import DBAPIError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from core.platform.messages import Consumed, DeadLetter
from core.platform.observability import REQUEST_ID_HEADER, bounded

log = logging.getLogger(__name__)

# Labelled by agent (and dead-letter topic): a handful of series per worker.
MESSAGES = Counter(
    "stride_stream_messages", "Messages an agent consumed, valid or not", ["agent", "outcome"]
)
DEAD_LETTERS = Counter(
    "stride_stream_dead_letters", "Invalid messages sent to a dead-letter topic", ["agent", "topic"]
)
BATCH_SECONDS = Histogram(
    "stride_stream_batch_seconds",
    "From a batch's arrival to its ack (decode, dead-letter, write, publish)",
    ["agent"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LOGGED_REQUEST_IDS = 256  # per batch log line; how many others there were is logged too

V = TypeVar("V")
R = TypeVar("R")
Record = tuple[bytes | None, bytes]  # (key, value) to produce
Send = Callable[[str, list[Record]], Awaitable[None]]
RETRY_MAX_DELAY_S = 10.0
# What a down dependency raises: the step is retried. Anything else is a bug: the agent
# stops with the batch unacked, so it is read again after the fix.
TRANSIENT = (DBAPIError, OSError, KafkaError)


@dataclass(frozen=True)
class Outcome:
    """What a write did, for the batch's log line and the records to publish after it."""

    summary: str
    publish: dict[str, list[Record]] = field(default_factory=dict)


@dataclass(frozen=True)
class Pipeline(Generic[V, R]):
    """One agent's batch handling. ``parse`` raises ``ValueError`` (pydantic's
    ``ValidationError`` is one) with the reason a message is invalid; ``write`` is the
    blocking domain function; ``outcome`` describes its result."""

    name: str
    parse: Callable[[bytes], V]
    write: Callable[[list[Consumed[V]]], R]
    outcome: Callable[[R], Outcome]
    dead_letter_topic: str | None  # None: another agent of the same topic dead-letters them


async def until_done(what: str, step: Callable[[], Awaitable[R]]) -> R:
    """Retry a step with exponential backoff while a dependency is down: a down database,
    lake or broker stalls the stream, it never skips a message."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(TRANSIENT),
        wait=wait_exponential(multiplier=0.2, max=RETRY_MAX_DELAY_S),
        before_sleep=lambda state: log.warning(
            "%s failed (%s); retrying in %.1fs",
            what,
            state.outcome.exception() if state.outcome else "?",
            state.next_action.sleep if state.next_action else 0,
        ),
        reraise=True,
    ):
        with attempt:
            return await step()
    raise AssertionError("unreachable: AsyncRetrying retries forever or re-raises")


def decode(
    pipeline: Pipeline[V, Any], events: Sequence[EventT], now: datetime
) -> tuple[list[Consumed[V]], list[Record]]:
    """The valid messages as :class:`Consumed`, and a dead-letter record per invalid one."""
    valid: list[Consumed[V]] = []
    dead: list[Record] = []
    parse = pipeline.parse
    for event in events:
        message = event.message
        try:
            value = parse(message.value)
        except ValueError as exc:
            dead.append(dead_letter(message, str(exc), now))
            continue
        record_time = datetime.fromtimestamp(message.timestamp, UTC) if message.timestamp else now
        valid.append(Consumed(value, message.partition, message.offset, record_time))
    return valid, dead


def request_ids(events: Sequence[EventT]) -> list[str]:
    """The API request ids the batch's records carry (header ``x-request-id``), in order."""
    found = []
    for event in events:
        headers = event.message.headers
        items = headers.items() if isinstance(headers, dict) else headers or ()
        for name, value in items:
            if name == REQUEST_ID_HEADER and value:
                found.append(value.decode("latin-1") if isinstance(value, bytes) else str(value))
    return found


def dead_letter(message: Any, reason: str, failed_at: datetime) -> Record:
    """The dead-letter record (original key, DeadLetter v1 JSON) of a message that failed."""
    letter = DeadLetter.of(
        reason,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        failed_at=failed_at,
    )
    return message.key, letter.model_dump_json().encode()


async def handle(
    pipeline: Pipeline[V, R], valid: list[Consumed[V]], dead: list[Record], send: Send
) -> Outcome:
    """Steps 2-4 of the module docstring for one decoded batch."""
    topic = pipeline.dead_letter_topic
    if dead and topic:
        await until_done("dead-lettering", lambda: send(topic, dead))
        DEAD_LETTERS.labels(pipeline.name, topic).inc(len(dead))
        log.warning("%s: sent %d invalid messages to %s", pipeline.name, len(dead), topic)
    elif dead:
        log.warning("%s: skipped %d invalid messages", pipeline.name, len(dead))
    result = await until_done(
        f"{pipeline.name}: writing the batch", lambda: asyncio.to_thread(pipeline.write, valid)
    )
    outcome = pipeline.outcome(result)
    for target, records in outcome.publish.items():
        if records:
            await until_done(f"publishing to {target}", lambda t=target, r=records: send(t, r))
    return outcome


async def run(
    stream: StreamT,
    pipeline: Pipeline[V, R],
    *,
    batch_size: int,
    within_s: float,
    send: Callable[[], Send],
) -> None:
    """Consume ``stream`` batch by batch through ``pipeline`` (module docstring).

    ``send`` is looked up per batch, so tests can stand in for the broker."""
    writing: asyncio.Future[None] | None = None

    async def write_and_ack(
        events: Sequence[EventT], valid: list[Consumed[V]], dead: list[Record], started: float
    ) -> None:
        outcome = await handle(pipeline, valid, dead, send())
        for event in events:
            await stream.ack(event)
        seconds = time.perf_counter() - started
        BATCH_SECONDS.labels(pipeline.name).observe(seconds)
        MESSAGES.labels(pipeline.name, "valid").inc(len(valid))
        if dead:
            MESSAGES.labels(pipeline.name, "invalid").inc(len(dead))
        ids, more = bounded(request_ids(events), LOGGED_REQUEST_IDS)
        log.info(
            "%s: batch of %d in %.0f ms: %s",
            pipeline.name,
            len(events),
            seconds * 1000,
            outcome.summary,
            extra={"agent": pipeline.name, "request_ids": ids, "more_request_ids": more},
        )

    try:
        async for events in stream.take_events(batch_size, within=within_s):
            started = time.perf_counter()
            for event in events:
                event.message.incref()  # held until this batch is durable
            valid, dead = decode(pipeline, events, datetime.now(UTC))
            if writing is not None:
                await writing  # batches commit in offset order; a failure stops the agent here
            writing = asyncio.ensure_future(write_and_ack(events, valid, dead, started))
        if writing is not None:
            await writing
    finally:
        if writing is not None and not writing.done():
            writing.cancel()  # never acked: the batch is read again by the next owner
