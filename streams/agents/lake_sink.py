"""The lake sink: wearable.samples.v1, game.events.v1, rewards.commands.v1 → bronze Delta.

Runs :mod:`streams.pipeline`: each micro-batch is appended to its bronze table in one Delta
commit (:mod:`core.lake.bronze`), and only then acked, so a failed append is read again
after a restart. A crash between commit and ack appends the batch twice; silver dedupes by
sample / event / command id. Wearable samples that do not validate go to
``wearable.samples.dlq.v1`` (DeadLetter v1, with the reason and the original bytes); invalid
game events are skipped here because the scoring agent, which reads the same topic,
dead-letters them, and invalid reward commands (the scoring agent's own output; no
dead-letter topic) are skipped with a warning. Bronze stores what happened: an event's
reward is the command the scoring agent issued, never recomputed here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from faust import StreamT

from core.events.contracts import parse_game_event, window_from_settings
from core.lake.bronze import (
    BRONZE_GAME_EVENTS,
    BRONZE_REWARD_COMMANDS,
    BRONZE_WEARABLE_SAMPLES,
    append_bronze,
    game_event_rows,
    reward_command_rows,
    wearable_rows,
)
from core.platform.messages import Consumed
from core.platform.topics import REWARD_COMMANDS, WEARABLE_SAMPLES, WEARABLE_SAMPLES_DLQ
from core.rewards.commands import RewardCommand
from core.wearables.contracts import WearableSample
from streams import pipeline
from streams.app import app, game_events_topic, raw_topic, send_and_wait, settings

wearable_samples_topic = raw_topic(WEARABLE_SAMPLES)
reward_commands_topic = raw_topic(REWARD_COMMANDS)
window = window_from_settings(settings)


def sink(
    table: str,
    parse: Callable[[bytes], Any],
    to_rows: Callable[[list[Consumed[Any]], datetime], pa.Table],
    dead_letter_topic: str | None,
) -> pipeline.Pipeline[Any, int]:
    """A pipeline appending each batch to ``table`` in one Delta commit."""

    def write(valid: list[Consumed[Any]]) -> int:
        rows = to_rows(valid, datetime.now(UTC))
        append_bronze(settings.lake_root, table, rows)
        return rows.num_rows

    return pipeline.Pipeline(
        name=f"sink {table}",
        parse=parse,
        write=write,
        outcome=lambda n: pipeline.Outcome(f"appended {n} rows to {table}"),
        dead_letter_topic=dead_letter_topic,
    )


WEARABLES = sink(
    BRONZE_WEARABLE_SAMPLES,
    WearableSample.model_validate_json,
    wearable_rows,
    WEARABLE_SAMPLES_DLQ,
)
GAME_EVENTS = sink(
    BRONZE_GAME_EVENTS,
    lambda raw: parse_game_event(raw, window),
    game_event_rows,
    None,  # dead-lettered by the scoring agent
)
REWARDS = sink(
    BRONZE_REWARD_COMMANDS,
    RewardCommand.model_validate_json,
    reward_command_rows,
    None,  # the scoring agent's own output: an invalid one is a bug, logged
)
send_dead_letters = send_and_wait  # a module name, so tests can stand in for the broker


async def _run(stream: StreamT, sink_pipeline: pipeline.Pipeline[Any, int]) -> None:
    await pipeline.run(
        stream,
        sink_pipeline,
        batch_size=settings.lake_sink_batch_size,
        within_s=settings.lake_sink_batch_within_s,
        send=lambda: send_dead_letters,
    )


@app.agent(wearable_samples_topic)
async def sink_wearable_samples(stream: StreamT) -> None:
    await _run(stream, WEARABLES)


@app.agent(game_events_topic)
async def sink_game_events(stream: StreamT) -> None:
    await _run(stream, GAME_EVENTS)


@app.agent(reward_commands_topic)
async def sink_reward_commands(stream: StreamT) -> None:
    await _run(stream, REWARDS)
