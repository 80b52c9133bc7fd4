"""The lake sink: wearable.samples.v1 and game.events.v1 → bronze Delta tables.

Micro-batches (``take_events``) are appended to bronze in one Delta commit each
(:mod:`core.lake`). Offsets are committed only after that commit: like the scoring agent,
the sink holds an extra reference on every message of a batch and acks the batch only
once the Delta commit succeeded, so a failed append is read again after a restart. A
crash between commit and ack appends the batch twice; silver dedupes by sample / event
id. Messages that do not decode are logged with their offset and skipped (the scoring
agent dead-letters invalid game events; the API validated every wearable sample).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pyarrow as pa
from faust import EventT, StreamT
from pydantic import ValidationError

from core.events import parse_game_event
from core.lake import (
    BRONZE_GAME_EVENTS,
    BRONZE_WEARABLE_SAMPLES,
    Consumed,
    append_bronze,
    game_event_rows,
    wearable_rows,
)
from core.rewards import rules_from_settings
from core.topics import WEARABLE_SAMPLES
from core.wearables.contracts import WearableSample
from streams.app import app, game_events_topic, settings

log = logging.getLogger(__name__)
RETRY_MAX_DELAY_S = 10.0

raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
wearable_samples_topic = app.topic(
    WEARABLE_SAMPLES, partitions=settings.kafka_topic_partitions, **raw
)
rules = rules_from_settings(settings)


def decode(events: Sequence[EventT], parse: Callable[[bytes], object]) -> list[Consumed]:
    decoded = []
    now = datetime.now(UTC)
    for event in events:
        message = event.message
        try:
            value = parse(message.value)
        except (ValueError, ValidationError) as exc:
            log.error(
                "skipping %s[%d]@%d: %s", message.topic, message.partition, message.offset, exc
            )
            continue
        record_time = datetime.fromtimestamp(message.timestamp, UTC) if message.timestamp else now
        decoded.append(Consumed(value, message.partition, message.offset, record_time))  # type: ignore[arg-type]
    return decoded


async def _append_until_done(table: str, rows: pa.Table) -> None:
    """Retry the Delta commit with backoff: a failing lake stalls the stream, never skips."""
    delay = 0.2
    while True:
        try:
            await asyncio.to_thread(append_bronze, settings.lake_root, table, rows)
            return
        except OSError as exc:
            log.warning("appending to %s failed (%s); retrying in %.1fs", table, exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_DELAY_S)


async def _sink(stream: StreamT, table: str, to_rows: Callable[[list[Consumed]], pa.Table]) -> None:
    async for events in stream.take_events(
        settings.lake_sink_batch_size, within=settings.lake_sink_batch_within_s
    ):
        for event in events:
            event.message.incref()  # held until the Delta commit (see module docstring)
        rows = to_rows(decode(events, _PARSERS[table]))
        await _append_until_done(table, rows)
        for event in events:
            await stream.ack(event)
        log.info("appended %d rows to %s", rows.num_rows, table)


_PARSERS: dict[str, Callable[[bytes], object]] = {
    BRONZE_WEARABLE_SAMPLES: WearableSample.model_validate_json,
    BRONZE_GAME_EVENTS: parse_game_event,
}


@app.agent(wearable_samples_topic)
async def sink_wearable_samples(stream: StreamT) -> None:
    await _sink(
        stream, BRONZE_WEARABLE_SAMPLES, lambda items: wearable_rows(items, datetime.now(UTC))
    )


@app.agent(game_events_topic)
async def sink_game_events(stream: StreamT) -> None:
    await _sink(
        stream, BRONZE_GAME_EVENTS, lambda items: game_event_rows(items, rules, datetime.now(UTC))
    )
