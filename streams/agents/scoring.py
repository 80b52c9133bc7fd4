"""The scoring agent: game.events.v1 -> PostgreSQL (totals, leaderboards, reward commands).

Per batch (``stream.take_events(n, within=s)``): invalid messages go to the DLQ with the
reason and the original bytes; valid ones are written in ONE transaction by
:func:`core.events.store.apply_batch`; reward commands are published after the commit.

Offsets: Faust commits an offset only once every stream holding the message acked it.
``take_events`` acks a batch when the agent asks for the next one, and it would also do
so if the agent died with an exception. So the agent takes one extra reference on every
message first and drops it only after the DB commit and the publishes succeeded: a batch
that failed is never acked, so its offsets are never committed and it is read again
after a restart. A crash between commit and ack replays the batch, which the dedupe
ledger turns into a no-op (pending reward commands are re-published with the same id).

Pipelining: while batch n is being written (PostgreSQL works, the event loop would idle),
the agent already receives and validates batch n+1. At most one write is in flight, so
batches still commit and ack in offset order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from faust import EventT, StreamT

from core.events.contracts import parse_game_event
from core.events.store import BatchOutcome, ConsumedEvent, apply_batch
from core.platform.db import engine_for
from core.platform.topics import GAME_EVENTS_DLQ, REWARD_COMMANDS
from core.rewards.commands import RewardCommand, rules_from_settings
from streams.app import (
    Record,
    app,
    dead_letter,
    game_events_topic,
    retry_until_done,
    send_and_wait,
    settings,
)

log = logging.getLogger(__name__)


engine = engine_for(settings.db_url)
rules = rules_from_settings(settings)


Parsed = tuple[list[ConsumedEvent], list[Record]]


def split(events: Sequence[EventT]) -> Parsed:
    """Valid events, and a dead-letter record (original key, DeadLetter JSON) per invalid one."""
    valid: list[ConsumedEvent] = []
    dead: list[Record] = []
    now = datetime.now(UTC)
    for event in events:
        message = event.message
        try:
            game_event = parse_game_event(message.value)
        except ValueError as exc:
            dead.append(dead_letter(message, str(exc), now))
            continue
        record_time = datetime.fromtimestamp(message.timestamp, UTC) if message.timestamp else now
        valid.append(ConsumedEvent(game_event, message.partition, message.offset, record_time))
    return valid, dead


_until_done = retry_until_done
_send_all = send_and_wait  # a module name, so tests can stand in for the broker


async def process(parsed: Parsed) -> BatchOutcome:
    """Dead-letter the invalid messages, write the valid events, publish reward commands."""
    valid, dead = parsed
    if dead:
        await _until_done("dead-lettering", lambda: _send_all(GAME_EVENTS_DLQ, dead))
        log.warning("sent %d invalid messages to %s", len(dead), GAME_EVENTS_DLQ)
    outcome = await _until_done(
        "writing the batch to PostgreSQL",
        lambda: asyncio.to_thread(apply_batch, engine, valid, rules),
    )
    commands = [_command_record(c) for c in outcome.commands_to_publish]
    if commands:
        await _until_done(
            "publishing reward commands", lambda: _send_all(REWARD_COMMANDS, commands)
        )
    return outcome


def _command_record(command: RewardCommand) -> tuple[bytes, bytes]:
    return command.player_id.encode(), command.model_dump_json().encode()


async def _write_and_ack(
    stream: StreamT,
    events: Sequence[EventT],
    parsed: Parsed,
    started: float,
) -> None:
    outcome = await process(parsed)
    for event in events:
        await stream.ack(event)
    log.info(
        "batch of %d in %.0f ms: %d applied, %d duplicates, %d reward commands",
        len(events),
        (time.perf_counter() - started) * 1000,
        outcome.applied,
        outcome.duplicates,
        len(outcome.commands_to_publish),
    )


@app.agent(game_events_topic)
async def score_events(stream: StreamT) -> None:
    """Validate batch n+1 while batch n is being written; one write in flight, in order."""
    writing: asyncio.Future[None] | None = None
    try:
        async for events in stream.take_events(
            settings.streams_batch_size, within=settings.streams_batch_within_s
        ):
            started = time.perf_counter()
            for event in events:
                event.message.incref()  # held until this batch is durable (module docstring)
            parsed = split(events)
            if writing is not None:
                await writing  # batches commit in offset order; a failure stops the agent here
            writing = asyncio.ensure_future(_write_and_ack(stream, events, parsed, started))
        if writing is not None:
            await writing
    finally:
        if writing is not None and not writing.done():
            writing.cancel()  # never acked: the batch is read again by the next owner
