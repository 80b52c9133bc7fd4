"""Apply a batch of game events to PostgreSQL in one transaction, exactly once per event.

``processed_events`` is the dedupe ledger: only events whose ``event_id`` was inserted by
this transaction change player totals, leaderboards and reward commands, so replays and
duplicates never double-count. Scores go to every leaderboard of the game through
``core.leaderboards.store.submit_scores`` inside the same transaction. Reward commands
to publish are returned to the caller, who sends them after the commit: the new ones,
plus any still-pending command of a duplicate event (a crash between commit and publish
must not lose a command; consumers dedupe on ``command_id``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from core.events import GameEvent
from core.leaderboards.rules import ScoreSubmission
from core.leaderboards.store import submit_scores
from core.models_events import RewardCommandRow
from core.player_totals import fold_totals
from core.rewards import RewardCommand, RewardRules, RewardStatus, reward_commands_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumedEvent:
    """A valid event and where it came from (the record time stands in for received_at)."""

    event: GameEvent
    partition: int
    offset: int
    record_time: datetime

    @property
    def received_at(self) -> datetime:
        return self.event.received_at or self.record_time

    @property
    def occurred_at(self) -> datetime:
        return self.event.corrected_occurred_at(self.received_at)


@dataclass(frozen=True)
class BatchOutcome:
    applied: int
    duplicates: int
    commands_to_publish: list[RewardCommand]


_INSERT_EVENTS = text(
    """
    INSERT INTO processed_events (event_id, game_id, player_id, type, payload, occurred_at,
        client_occurred_at, sent_at, received_at, processed_at, source_partition, source_offset)
    SELECT e.event_id, e.game_id, e.player_id, e.type, e.payload::jsonb, e.occurred_at,
        e.client_occurred_at, e.sent_at, e.received_at, clock_timestamp(), e.part, e.off
    FROM unnest(CAST(:event_id AS uuid[]), CAST(:game_id AS text[]), CAST(:player_id AS text[]),
        CAST(:type AS text[]), CAST(:payload AS text[]), CAST(:occurred_at AS timestamptz[]),
        CAST(:client_occurred_at AS timestamptz[]), CAST(:sent_at AS timestamptz[]),
        CAST(:received_at AS timestamptz[]), CAST(:part AS smallint[]), CAST(:off AS bigint[]))
        AS e(event_id, game_id, player_id, type, payload, occurred_at, client_occurred_at,
             sent_at, received_at, part, off)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
    """
)

_UPSERT_TOTALS = text(
    """
    INSERT INTO player_totals AS t (game_id, player_id, events, matches, wins, losses, draws,
        total_score, best_score, purchases, token_spent, achievements, sessions, play_seconds,
        first_event_at, last_event_at, updated_at)
    SELECT d.*, clock_timestamp()
    FROM unnest(CAST(:game_id AS text[]), CAST(:player_id AS text[]), CAST(:events AS bigint[]),
        CAST(:matches AS int[]), CAST(:wins AS int[]), CAST(:losses AS int[]),
        CAST(:draws AS int[]), CAST(:total_score AS bigint[]), CAST(:best_score AS bigint[]),
        CAST(:purchases AS int[]), CAST(:token_spent AS numeric[]),
        CAST(:achievements AS int[]), CAST(:sessions AS int[]),
        CAST(:play_seconds AS double precision[]), CAST(:first_event_at AS timestamptz[]),
        CAST(:last_event_at AS timestamptz[])) AS d
    ON CONFLICT (game_id, player_id) DO UPDATE SET
        events = t.events + EXCLUDED.events,
        matches = t.matches + EXCLUDED.matches,
        wins = t.wins + EXCLUDED.wins,
        losses = t.losses + EXCLUDED.losses,
        draws = t.draws + EXCLUDED.draws,
        total_score = t.total_score + EXCLUDED.total_score,
        best_score = GREATEST(t.best_score, EXCLUDED.best_score),
        purchases = t.purchases + EXCLUDED.purchases,
        token_spent = t.token_spent + EXCLUDED.token_spent,
        achievements = t.achievements + EXCLUDED.achievements,
        sessions = t.sessions + EXCLUDED.sessions,
        play_seconds = t.play_seconds + EXCLUDED.play_seconds,
        first_event_at = LEAST(t.first_event_at, EXCLUDED.first_event_at),
        last_event_at = GREATEST(t.last_event_at, EXCLUDED.last_event_at),
        updated_at = EXCLUDED.updated_at
    """
)


def _columns(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in names}


def apply_batch(
    engine: Engine,
    consumed: Sequence[ConsumedEvent],
    rules: RewardRules,
) -> BatchOutcome:
    """Write a batch in one transaction; see the module docstring for the guarantees."""
    unique: dict[uuid.UUID, ConsumedEvent] = {}
    for item in consumed:
        unique.setdefault(item.event.event_id, item)
    items = list(unique.values())
    if not items:
        return BatchOutcome(0, len(consumed), [])
    now = datetime.now(UTC)
    event_rows = [
        {
            "event_id": c.event.event_id,
            "game_id": c.event.game_id,
            "player_id": c.event.player_id,
            "type": c.event.type,
            "payload": c.event.payload.model_dump_json(),
            "occurred_at": c.occurred_at,
            "client_occurred_at": c.event.occurred_at,
            "sent_at": c.event.sent_at,
            "received_at": c.received_at,
            "part": c.partition,
            "off": c.offset,
        }
        for c in items
    ]
    with engine.begin() as conn:
        inserted = set(
            conn.execute(_INSERT_EVENTS, _columns(event_rows, list(event_rows[0]))).scalars()
        )
        new = [c for c in items if c.event.event_id in inserted]
        if new:
            _add_totals(conn, new, rules.token)
            submit_scores(conn, [_submission(c) for c in new if c.event.score is not None])
        commands = [cmd for c in new for cmd in reward_commands_for(c.event, rules, now)]
        if commands:
            _insert_commands(conn, commands)
        duplicates = [c.event.event_id for c in items if c.event.event_id not in inserted]
        if duplicates:
            commands += _pending_commands_of(conn, duplicates)
    return BatchOutcome(len(new), len(consumed) - len(new), commands)


def _submission(consumed: ConsumedEvent) -> ScoreSubmission:
    event = consumed.event
    assert event.score is not None
    return ScoreSubmission(
        game_id=event.game_id,
        owner_id=event.player_id,
        score=event.score,
        event_id=event.event_id,
        occurred_at=consumed.occurred_at,
    )


def _add_totals(conn: Connection, new: Sequence[ConsumedEvent], token: str) -> None:
    deltas = fold_totals(((c.event, c.occurred_at) for c in new), token)
    rows = [vars(d) for d in deltas]
    conn.execute(_UPSERT_TOTALS, _columns(rows, list(rows[0])))


def _insert_commands(conn: Connection, commands: Sequence[RewardCommand]) -> None:
    conn.execute(
        pg_insert(RewardCommandRow).on_conflict_do_nothing(index_elements=["command_id"]),
        [
            {
                "command_id": c.command_id,
                "source_event_id": c.source_event_id,
                "action": c.action,
                "status": RewardStatus.pending,
                "game_id": c.game_id,
                "player_id": c.player_id,
                "token": c.token,
                "amount": c.amount,
                "reason": c.reason,
                "issued_at": c.issued_at,
            }
            for c in commands
        ],
    )


def _pending_commands_of(conn: Connection, event_ids: Sequence[uuid.UUID]) -> list[RewardCommand]:
    table = RewardCommandRow.__table__
    rows = conn.execute(
        select(table).where(
            table.c.source_event_id.in_(event_ids), table.c.status == RewardStatus.pending
        )
    ).mappings()
    return [
        RewardCommand.model_validate(
            {k: v for k, v in r.items() if k in RewardCommand.model_fields}
        )
        for r in rows
    ]
