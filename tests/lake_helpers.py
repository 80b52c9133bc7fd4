"""Bronze rows made by hand, for the lake tests (unit and integration)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa

from core.lake.bronze import GAME_EVENTS_SCHEMA


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
            "tokens_minted": [Decimal("0.5")] * n,
            "tokens_burned": [Decimal(0)] * n,
            "payload": ['{"score":1}'] * n,
            "date": [day] * n,
            "kafka_partition": [0] * n,
            "kafka_offset": list(range(start, start + n)),
            "ingested_at": at,
        },
        schema=GAME_EVENTS_SCHEMA,
    )
