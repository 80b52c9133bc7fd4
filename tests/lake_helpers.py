"""Bronze rows made by hand, for the lake tests (unit and integration)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa

from core.lake.bronze import GAME_EVENTS_SCHEMA, Consumed, reward_command_rows
from core.rewards.commands import RewardAction, RewardCommand, command_id_for


def bronze_game_events(start: int, n: int, day: date, game: str) -> pa.Table:
    """``n`` bronze game event rows of ``game`` at 10:00 UTC on ``day``, with ids
    ``start`` … ``start + n - 1`` (as UUIDs) and those Kafka offsets."""
    at = pa.array(
        [datetime(day.year, day.month, day.day, 10, tzinfo=UTC)] * n, pa.timestamp("us", tz="UTC")
    )
    return pa.table(
        {
            "event_id": [str(uuid.UUID(int=start + i)) for i in range(n)],
            "game_id": [game] * n,
            "player_id": [f"p{i % 3}" for i in range(n)],
            "type": ["score"] * n,
            "occurred_at": at,
            "client_occurred_at": at,
            "received_at": at,
            "session_id": [None] * n,
            "match_outcome": [None] * n,
            "score": list(range(n)),
            "payload": ['{"score":1}'] * n,
            "date": [day] * n,
            "kafka_partition": [0] * n,
            "kafka_offset": list(range(start, start + n)),
            "ingested_at": at,
        },
        schema=GAME_EVENTS_SCHEMA,
    )


def bronze_reward_commands(
    commands: Sequence[RewardCommand], ingested_at: datetime, first_offset: int = 0
) -> pa.Table:
    """Bronze rows of ``commands`` as the lake sink writes them, at Kafka offsets
    ``first_offset`` … of partition 0."""
    items = [Consumed(c, 0, first_offset + i, ingested_at) for i, c in enumerate(commands)]
    return reward_command_rows(items, ingested_at)


def reward_command(
    game: str, action: RewardAction, amount: str, issued_at: datetime, event: int
) -> RewardCommand:
    """The command the scoring agent issues for the event with id ``event`` (as a UUID)."""
    event_id = uuid.UUID(int=event)
    return RewardCommand(
        command_id=command_id_for(game, event_id, action),
        action=action,
        game_id=game,
        player_id=f"p{event % 3}",
        token="STRIDE",
        amount=Decimal(amount),
        reason="match_won" if action is RewardAction.mint else "purchase:gold",
        source_event_id=event_id,
        issued_at=issued_at,
    )
