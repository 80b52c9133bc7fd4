"""The scoring agent: game.events.v1 -> PostgreSQL (totals, leaderboards, reward commands).

Runs :mod:`streams.pipeline`: invalid messages go to ``game.events.dlq.v1`` with the reason
and the original bytes; valid ones are written in ONE transaction by
:func:`core.events.store.apply_batch`; the reward commands it returns are published to
``rewards.commands.v1`` after the commit, then the batch is acked. A crash between commit
and ack replays the batch, which the dedupe ledger turns into a no-op (pending reward
commands are re-published with the same id, and consumers dedupe on it).
"""

from __future__ import annotations

from faust import StreamT

from core.events.contracts import GameEvent, parse_game_event, window_from_settings
from core.events.store import BatchOutcome, apply_batch
from core.platform.db import engine_for
from core.platform.messages import Consumed
from core.platform.topics import GAME_EVENTS_DLQ, REWARD_COMMANDS
from core.rewards.commands import rules_from_settings
from streams import pipeline
from streams.app import app, game_events_topic, send_and_wait, settings

engine = engine_for(settings.db_url)
rules = rules_from_settings(settings)
window = window_from_settings(settings)


def write(valid: list[Consumed[GameEvent]]) -> BatchOutcome:
    return apply_batch(engine, valid, rules)


def outcome(result: BatchOutcome) -> pipeline.Outcome:
    commands = result.commands_to_publish
    return pipeline.Outcome(
        summary=(
            f"{result.applied} applied, {result.duplicates} duplicates, "
            f"{len(commands)} reward commands"
        ),
        publish={
            REWARD_COMMANDS: [
                (c.player_id.encode(), c.__pydantic_serializer__.to_json(c)) for c in commands
            ]
        },
    )


SCORING = pipeline.Pipeline(
    name="score_events",
    parse=lambda raw: parse_game_event(raw, window),
    write=lambda valid: write(valid),  # looked up per batch, so tests can stand in
    outcome=outcome,
    dead_letter_topic=GAME_EVENTS_DLQ,
)
_send_all = send_and_wait  # a module name, so tests can stand in for the broker


@app.agent(game_events_topic)
async def score_events(stream: StreamT) -> None:
    await pipeline.run(
        stream,
        SCORING,
        batch_size=settings.streams_batch_size,
        within_s=settings.streams_batch_within_s,
        send=lambda: _send_all,
    )
