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
from collections import deque
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
# Where a batch's records spend their time, summed over the records (record-seconds): divided
# by stride_stream_messages_total it is the mean time a record spends in each stage.
# "queued": from the record's Kafka timestamp to its batch handed to the agent (in Kafka, the
# fetch, Faust's stream buffer and the batch window); "previous": waiting for the previous
# batch's write and publish; "write", "publish", "ack": the steps of the module docstring.
STAGE_SECONDS = Counter(
    "stride_stream_stage_seconds",
    "Seconds a batch's records spent in each stage, summed over the records",
    ["agent", "stage"],
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


def queued_seconds(events: Sequence[EventT], now: float) -> float:
    """From each record's Kafka timestamp to ``now`` (the batch handed to the agent), summed
    (a record without a timestamp counts nothing)."""
    return sum(max(now - ts, 0.0) for event in events if (ts := event.message.timestamp))


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


async def send_dead_letters(pipeline: Pipeline[V, R], dead: list[Record], send: Send) -> None:
    """Step 2: the batch's invalid messages to the pipeline's dead-letter topic (or skipped)."""
    topic = pipeline.dead_letter_topic
    if dead and topic:
        await until_done("dead-lettering", lambda: send(topic, dead))
        DEAD_LETTERS.labels(pipeline.name, topic).inc(len(dead))
        log.warning("%s: sent %d invalid messages to %s", pipeline.name, len(dead), topic)
    elif dead:
        log.warning("%s: skipped %d invalid messages", pipeline.name, len(dead))


def batch_done(
    pipeline: Pipeline[V, R],
    events: Sequence[EventT],
    valid: int,
    dead: int,
    seconds: float,
    summary: str,
) -> None:
    """A durable, acknowledged batch: its metrics and its log line."""
    BATCH_SECONDS.labels(pipeline.name).observe(seconds)
    MESSAGES.labels(pipeline.name, "valid").inc(valid)
    if dead:
        MESSAGES.labels(pipeline.name, "invalid").inc(dead)
    ids, more = bounded(request_ids(events), LOGGED_REQUEST_IDS)
    log.info(
        "%s: batch of %d in %.0f ms: %s",
        pipeline.name,
        len(events),
        seconds * 1000,
        summary,
        extra={"agent": pipeline.name, "request_ids": ids, "more_request_ids": more},
    )


async def handle(
    pipeline: Pipeline[V, R], valid: list[Consumed[V]], dead: list[Record], send: Send
) -> Outcome:
    """Steps 2-4 of the module docstring for one decoded batch."""
    await send_dead_letters(pipeline, dead, send)
    started = time.perf_counter()
    result = await until_done(
        f"{pipeline.name}: writing the batch", lambda: asyncio.to_thread(pipeline.write, valid)
    )
    wrote = time.perf_counter()
    outcome = pipeline.outcome(result)
    for target, records in outcome.publish.items():
        if records:
            await until_done(f"publishing to {target}", lambda t=target, r=records: send(t, r))
    records = len(valid) + len(dead)
    STAGE_SECONDS.labels(pipeline.name, "write").inc((wrote - started) * records)
    STAGE_SECONDS.labels(pipeline.name, "publish").inc((time.perf_counter() - wrote) * records)
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
        acking = time.perf_counter()
        for event in events:
            await stream.ack(event)
        done = time.perf_counter()
        STAGE_SECONDS.labels(pipeline.name, "ack").inc((done - acking) * len(events))
        batch_done(pipeline, events, len(valid), len(dead), done - started, outcome.summary)

    try:
        async for events in stream.take_events(batch_size, within=within_s):
            started, arrived = time.perf_counter(), time.time()
            for event in events:
                event.message.incref()  # held until this batch is durable
            STAGE_SECONDS.labels(pipeline.name, "queued").inc(queued_seconds(events, arrived))
            valid, dead = decode(pipeline, events, datetime.now(UTC))
            if writing is not None:
                waiting = time.perf_counter()
                await writing  # batches commit in offset order; a failure stops the agent here
                STAGE_SECONDS.labels(pipeline.name, "previous").inc(
                    (time.perf_counter() - waiting) * len(events)
                )
            writing = asyncio.ensure_future(write_and_ack(events, valid, dead, started))
        if writing is not None:
            await writing
    finally:
        if writing is not None and not writing.done():
            writing.cancel()  # never acked: the batch is read again by the next owner


@dataclass
class _Taken(Generic[V]):
    """One take of the stream, decoded, waiting for the writer."""

    events: Sequence[EventT]
    valid: list[Consumed[V]]
    dead: list[Record]
    started: float  # perf_counter when it was taken


async def run_coalesced(
    stream: StreamT,
    pipeline: Pipeline[V, R],
    *,
    batch_size: int,
    within_s: float,
    send: Callable[[], Send],
) -> None:
    """:func:`run` with group commit, for an agent whose batch write costs about the same
    for few records or many and whose records must wait as little as possible (the battle
    engine).

    The stream is taken every ``within_s`` (a short window) and each take is decoded and
    queued; one writer writes everything queued when it is free (whole takes, up to
    ``batch_size`` records, in offset order) as ONE batch (:func:`handle`'s steps), so a
    write never waits for a batch window to close behind another write: a record waits for
    the write in progress, then is in the next. The publish and ack of batch n run while
    batch n+1 is written (n+1 reads what n committed; the publish of n+1 starts only after
    n's is done, so batches still ack in offset order, and a crash before an ack replays
    the batch, whose write then changes nothing). At most ``2 * batch_size`` records wait
    queued; beyond that the stream is not taken (Faust's buffer, then the fetch, stop)."""
    queue: deque[_Taken[Any]] = deque()
    waiting = 0  # records queued
    wake, room = asyncio.Event(), asyncio.Event()
    room.set()
    limit = 2 * batch_size

    async def publish_and_ack(
        previous: asyncio.Future[None] | None,
        taken: list[_Taken[Any]],
        outcome: Outcome,
        wrote: float,
    ) -> None:
        try:
            await publish_then_ack(previous, taken, outcome, wrote)
        finally:
            wake.set()  # the writer looks at how it ended

    async def publish_then_ack(
        previous: asyncio.Future[None] | None,
        taken: list[_Taken[Any]],
        outcome: Outcome,
        wrote: float,
    ) -> None:
        events = [e for t in taken for e in t.events]
        for target, records in outcome.publish.items():
            if records:
                await until_done(
                    f"publishing to {target}", lambda t=target, r=records: send()(t, r)
                )
        published = time.perf_counter()
        if previous is not None:
            await previous  # acks in offset order
        for event in events:
            await stream.ack(event)
        done = time.perf_counter()
        STAGE_SECONDS.labels(pipeline.name, "publish").inc((published - wrote) * len(events))
        STAGE_SECONDS.labels(pipeline.name, "ack").inc((done - published) * len(events))
        valid = sum(len(t.valid) for t in taken)
        dead = sum(len(t.dead) for t in taken)
        batch_done(pipeline, events, valid, dead, done - taken[0].started, outcome.summary)

    async def writer() -> None:
        nonlocal waiting
        publishing: asyncio.Future[None] | None = None
        try:
            while True:
                while not queue:
                    if publishing is not None and publishing.done():
                        publishing.result()  # a failed publish stops the agent here
                    wake.clear()
                    await wake.wait()
                taken = [queue.popleft()]
                count = len(taken[0].events)
                while queue and count + len(queue[0].events) <= batch_size:
                    taken.append(queue.popleft())
                    count += len(taken[-1].events)
                waiting -= count
                if waiting < limit:
                    room.set()
                start = time.perf_counter()
                valid = [c for t in taken for c in t.valid]
                dead = [r for t in taken for r in t.dead]
                STAGE_SECONDS.labels(pipeline.name, "previous").inc(
                    sum((start - t.started) * len(t.events) for t in taken)
                )
                await send_dead_letters(pipeline, dead, send())
                result = await until_done(
                    f"{pipeline.name}: writing the batch",
                    lambda v=valid: asyncio.to_thread(pipeline.write, v),  # type: ignore[misc]
                )
                wrote = time.perf_counter()
                STAGE_SECONDS.labels(pipeline.name, "write").inc((wrote - start) * count)
                outcome = pipeline.outcome(result)
                if publishing is not None and publishing.done():
                    publishing.result()  # a failed publish stops the agent here
                publishing = asyncio.ensure_future(
                    publish_and_ack(publishing, taken, outcome, wrote)
                )
        finally:
            if publishing is not None and not publishing.done():
                publishing.cancel()

    async def take() -> None:
        nonlocal waiting
        async for events in stream.take_events(batch_size, within=within_s):
            started, arrived = time.perf_counter(), time.time()
            for event in events:
                event.message.incref()  # held until its batch is durable and published
            STAGE_SECONDS.labels(pipeline.name, "queued").inc(queued_seconds(events, arrived))
            valid, dead = decode(pipeline, events, datetime.now(UTC))
            queue.append(_Taken(events, valid, dead, started))
            waiting += len(events)
            wake.set()
            if waiting >= limit:
                room.clear()
                await room.wait()  # the writer is behind: stop taking until it catches up

    writing, taking = asyncio.ensure_future(writer()), asyncio.ensure_future(take())
    try:
        done, _pending = await asyncio.wait([writing, taking], return_when=asyncio.FIRST_COMPLETED)
        if writing in done:
            writing.result()  # the writer stops only on a bug: the agent stops with it, now
        taking.result()  # the stream ended (or failed)
    finally:
        # what was not acked is read again by the partition's next owner
        writing.cancel()
        taking.cancel()
