"""The Faust app of Stride: one app object per worker role, its topics, its heartbeat.

A worker process runs one role (``STRIDE_STREAMS_ROLE``, see :mod:`streams.heartbeat`): the
scoring agent, or the lake sink, the metric alerts or the battle engine, each in its own
consumer group, so that none takes CPU from another's event loop. Short session/heartbeat/rebalance
timeouts (a restarted worker owns its partitions again within seconds), offsets from
``earliest`` (a new group reads the whole topic), no Faust tables (PostgreSQL is the source
of truth, every write keyed by event id), web server off.
"""

from __future__ import annotations

import asyncio
import logging
import os

import faust

from core.platform.config import Settings, get_settings
from core.platform.kafka_batches import queue_batches
from core.platform.kafka_security import faust_options
from core.platform.observability import logging_dict_config
from core.platform.topics import GAME_EVENTS, METRIC_SAMPLES
from streams import tuning
from streams.heartbeat import (
    BATTLES,
    METRIC_ALERTS,
    PROCESS_INDEX_ENV,
    READINESS_TOPIC,
    ROLE_ENV,
    SCORING,
    app_id_of,
    write_heartbeat,
)
from streams.pipeline import Record
from streams.tuning import RawBytesSchema

log = logging.getLogger(__name__)

tuning.install()  # before any app is built: eager delivery of fetched messages


def build_app(settings: Settings, role: str) -> faust.App:
    app_id = app_id_of(settings, role)
    batch = {
        SCORING: settings.streams_batch_size,
        METRIC_ALERTS: settings.metrics_alert_batch_size,
        BATTLES: settings.battles_batch_size,
    }.get(role, settings.lake_sink_batch_size)
    datadir = settings.state_dir / "streams" / app_id / os.environ.get(PROCESS_INDEX_ENV, "0")
    datadir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        **faust_options(settings),  # broker and broker_credentials
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
        topic_partitions=settings.kafka_topic_partitions,
        topic_replication_factor=settings.kafka_replication_factor,
        logging_config=logging_dict_config(settings.log_format),  # JSON lines, request ids
        **tuning.speed_options(batch),
    )


settings = get_settings()
role = os.environ.get(ROLE_ENV, SCORING)
app = build_app(settings, role)


def raw_topic(name: str) -> faust.TopicT:
    """A topic whose messages reach the agents as the bytes Kafka delivered."""
    return app.topic(name, partitions=settings.kafka_topic_partitions, schema=RawBytesSchema())


game_events_topic = raw_topic(GAME_EVENTS)
metric_samples_topic = raw_topic(METRIC_SAMPLES)

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
    topic = READINESS_TOPIC[role]
    write_heartbeat(settings, role, sorted(p for p in _assigned if p.startswith(topic + ":")))


async def send_and_wait(topic: str, records: list[Record]) -> None:
    """Send through the app's producer and wait until the broker acknowledged every record:
    grouped by partition into whole batches (:mod:`core.platform.kafka_batches`, each
    partition's records in their order, where ``send`` would have put them), awaited once."""
    producer = app.producer._ensure_producer()  # the aiokafka producer Faust started
    await asyncio.gather(*await queue_batches(producer, topic, records))
