"""The lake sink: wearable.samples.v1, game.events.v1, rewards.commands.v1 → bronze Delta.

Micro-batches (``take_events``) are appended to bronze in one Delta commit each
(:mod:`core.lake.bronze`). Offsets are committed only after that commit: like the scoring agent,
the sink holds an extra reference on every message of a batch and acks the batch only
once the Delta commit succeeded, so a failed append is read again after a restart. A
crash between commit and ack appends the batch twice; silver dedupes by sample / event
id. Wearable samples that do not validate go to ``wearable.samples.dlq.v1`` (DeadLetter v1,
with the reason and the original bytes) before the batch is acked; invalid game events are
skipped here because the scoring agent dead-letters them, and invalid reward commands (the
scoring agent's own output; no dead-letter topic) are skipped with a warning.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pyarrow as pa
from faust import EventT, StreamT
from pydantic import ValidationError

from core.events.contracts import parse_game_event
from core.lake.bronze import (
    BRONZE_GAME_EVENTS,
    BRONZE_REWARD_COMMANDS,
    BRONZE_WEARABLE_SAMPLES,
    Consumed,
    append_bronze,
    game_event_rows,
    reward_command_rows,
    wearable_rows,
)
from core.platform.topics import REWARD_COMMANDS, WEARABLE_SAMPLES, WEARABLE_SAMPLES_DLQ
from core.rewards.commands import RewardCommand
from core.wearables.contracts import WearableSample
from streams.app import (
    RawBytesSchema,
    Record,
    app,
    dead_letter,
    game_events_topic,
    retry_until_done,
    send_and_wait,
    settings,
)

log = logging.getLogger(__name__)

wearable_samples_topic = app.topic(
    WEARABLE_SAMPLES, partitions=settings.kafka_topic_partitions, schema=RawBytesSchema()
)
reward_commands_topic = app.topic(
    REWARD_COMMANDS, partitions=settings.kafka_topic_partitions, schema=RawBytesSchema()
)


def decode(
    events: Sequence[EventT], parse: Callable[[bytes], object]
) -> tuple[list[Consumed], list[Record]]:
    """Decoded messages, and a dead-letter record per message that does not validate."""
    decoded: list[Consumed] = []
    dead: list[Record] = []
    now = datetime.now(UTC)
    for event in events:
        message = event.message
        try:
            value = parse(message.value)
        except (ValueError, ValidationError) as exc:
            dead.append(dead_letter(message, str(exc), now))
            continue
        record_time = datetime.fromtimestamp(message.timestamp, UTC) if message.timestamp else now
        decoded.append(Consumed(value, message.partition, message.offset, record_time))  # type: ignore[arg-type]
    return decoded, dead


send_dead_letters = send_and_wait  # a module name, so tests can stand in for the broker


async def _sink(stream: StreamT, table: str, to_rows: Callable[[list[Consumed]], pa.Table]) -> None:
    async for events in stream.take_events(
        settings.lake_sink_batch_size, within=settings.lake_sink_batch_within_s
    ):
        for event in events:
            event.message.incref()  # held until the Delta commit (see module docstring)
        decoded, dead = decode(events, _PARSERS[table])
        dlq = _DEAD_LETTER_TOPICS.get(table)
        if dead and dlq:
            await retry_until_done("dead-lettering", lambda t=dlq, d=dead: send_dead_letters(t, d))
            log.warning("sent %d invalid messages to %s", len(dead), dlq)
        elif dead:
            log.warning("skipped %d invalid messages for %s", len(dead), table)
        rows = to_rows(decoded)
        await retry_until_done(
            f"appending to {table}",
            lambda r=rows: asyncio.to_thread(append_bronze, settings.lake_root, table, r),
        )
        for event in events:
            await stream.ack(event)
        log.info("appended %d rows to %s", rows.num_rows, table)


# Invalid game events are dead-lettered by the scoring agent, which reads the same topic.
_DEAD_LETTER_TOPICS = {BRONZE_WEARABLE_SAMPLES: WEARABLE_SAMPLES_DLQ}
_PARSERS: dict[str, Callable[[bytes], object]] = {
    BRONZE_WEARABLE_SAMPLES: WearableSample.model_validate_json,
    BRONZE_GAME_EVENTS: parse_game_event,
    BRONZE_REWARD_COMMANDS: RewardCommand.model_validate_json,
}


@app.agent(wearable_samples_topic)
async def sink_wearable_samples(stream: StreamT) -> None:
    await _sink(
        stream, BRONZE_WEARABLE_SAMPLES, lambda items: wearable_rows(items, datetime.now(UTC))
    )


@app.agent(game_events_topic)
async def sink_game_events(stream: StreamT) -> None:
    await _sink(stream, BRONZE_GAME_EVENTS, lambda items: game_event_rows(items, datetime.now(UTC)))


@app.agent(reward_commands_topic)
async def sink_reward_commands(stream: StreamT) -> None:
    await _sink(
        stream, BRONZE_REWARD_COMMANDS, lambda items: reward_command_rows(items, datetime.now(UTC))
    )
