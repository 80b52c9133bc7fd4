"""The Faust app of Stride: one app object per worker role, its topics, its heartbeat.

A worker process runs one role (``STRIDE_STREAMS_ROLE``, see :mod:`streams.heartbeat`): the
scoring agent, or the lake sink in its own consumer group, so that the bronze appends
never take CPU from the scoring processes' event loops. Short session/heartbeat/rebalance
timeouts (a restarted worker owns its partitions again within seconds), offsets from
``earliest`` (a new group reads the whole topic), no Faust tables (PostgreSQL is the source
of truth, every write keyed by event id), web server off.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import faust
from aiokafka.errors import KafkaError
from faust.sensors import Monitor
from faust.types import TP, AppT, EventT, Message, StreamT
from sqlalchemy.exc import DBAPIError

from core.events.contracts import DeadLetter
from core.platform.config import Settings, get_settings
from core.platform.topics import GAME_EVENTS
from streams import tuning
from streams.heartbeat import PROCESS_INDEX_ENV, ROLE_ENV, SCORING, app_id_of, write_heartbeat

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_MAX_DELAY_S = 10.0
Record = tuple[bytes | None, bytes]  # (key, value) to produce

tuning.install()  # eager delivery of fetched messages to the streams


class QuietMonitor(Monitor):
    """Faust's Monitor without its per-message bookkeeping.

    The Monitor counts and times every message and event for Faust's web views, which this
    worker does not serve (web server off; readiness is the heartbeat file, progress is in
    the log and in PostgreSQL). Those four hooks ran for every message; the rest of the
    Monitor (commits, rebalances, sends) is kept."""

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        return None

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT, event: EventT
    ) -> dict | None:
        return None

    def on_stream_event_out(
        self, tp: TP, offset: int, stream: StreamT, event: EventT, state: dict | None = None
    ) -> None:
        return None

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        return None


class RawBytesSchema(faust.Schema):
    """Keys and values stay the bytes Kafka delivered: the agents validate them with the
    pydantic contracts of ``core`` (and dead-letter what fails), so Faust's codec registry
    has nothing to do. Skipping it (and the settings lookup of ``app.create_event``) saves a
    chain of calls per message."""

    def __init__(self) -> None:
        super().__init__(
            key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    def compile(self, app: AppT, **_ignored: Any) -> Callable[..., Awaitable[EventT]]:
        event_class = app.conf.Event

        async def decode(message: Message, *, propagate: bool = False) -> EventT:
            return event_class(app, message.key, message.value, message.headers, message)

        return decode


def build_app(settings: Settings, role: str) -> faust.App:
    app_id = app_id_of(settings, role)
    batch = settings.streams_batch_size if role == SCORING else settings.lake_sink_batch_size
    datadir = settings.state_dir / "streams" / app_id / os.environ.get(PROCESS_INDEX_ENV, "0")
    datadir.mkdir(parents=True, exist_ok=True)
    brokers = ";".join(f"kafka://{b.strip()}" for b in settings.kafka_bootstrap.split(","))
    return faust.App(
        app_id,
        broker=brokers,
        autodiscover=False,
        datadir=str(datadir),
        web_enabled=False,
        web_host="127.0.0.1",
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        broker_rebalance_timeout=10,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=0.005,  # batch reward commands and dead letters into few requests
        topic_partitions=settings.kafka_topic_partitions,
        topic_replication_factor=settings.kafka_replication_factor,
        stream_buffer_maxsize=max(4096, 2 * batch),
        Monitor=QuietMonitor,
    )


settings = get_settings()
role = os.environ.get(ROLE_ENV, SCORING)
app = build_app(settings, role)

game_events_topic = app.topic(
    GAME_EVENTS, partitions=settings.kafka_topic_partitions, schema=RawBytesSchema()
)

_assigned: set[str] = set()


@app.on_partitions_assigned.connect
async def _remember_assignment(_app: faust.App, assigned: set, **_kwargs: object) -> None:
    _assigned.clear()
    _assigned.update(f"{tp.topic}:{tp.partition}" for tp in assigned)
    _write_heartbeat()


@app.timer(interval=1.0)
async def _heartbeat() -> None:
    _write_heartbeat()


def _write_heartbeat() -> None:
    """Readiness for the supervisor: this pid, now, and the partitions this process owns."""
    write_heartbeat(settings, role, sorted(p for p in _assigned if p.startswith(GAME_EVENTS + ":")))


async def retry_until_done(what: str, step: Callable[[], Awaitable[T]]) -> T:
    """Retry a step with backoff: a down database, lake or broker stalls the stream, never
    skips a message."""
    delay = 0.2
    while True:
        try:
            return await step()
        except (DBAPIError, OSError, KafkaError) as exc:
            log.warning("%s failed (%s); retrying in %.1fs", what, exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_DELAY_S)


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


async def send_and_wait(topic: str, records: list[Record]) -> None:
    """Send through the app's producer and wait until the broker acknowledged every record."""
    pending = [
        await app.producer.send(topic, key, value, None, None, None) for key, value in records
    ]
    await asyncio.gather(*pending)
