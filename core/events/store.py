"""Apply a batch of game events to PostgreSQL in one transaction, exactly once per event.

``processed_events`` is the dedupe ledger: only events whose ``event_id`` was inserted by
this transaction change player totals, leaderboards and reward commands, so replays and
duplicates never double-count. Scores go to every leaderboard of the game through
``core.leaderboards.writer.submit_scores`` inside the same transaction. Reward commands
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

import pydantic_core
from sqlalchemy import select, text, tuple_
from sqlalchemy.engine import Connection, Engine

from core.content.progress import apply_batch as advance_progress
from core.events.contracts import GameEvent, corrected_time
from core.events.models import RewardCommandRow
from core.events.totals import fold_totals
from core.leaderboards.rules import ScoreSubmission
from core.leaderboards.writer import submit_scores
from core.platform.db import json_rows
from core.platform.messages import Consumed
from core.rewards.commands import RewardCommand, RewardRules, RewardStatus, reward_commands_for

log = logging.getLogger(__name__)


ConsumedEvent = Consumed[GameEvent]
EventKey = tuple[str, uuid.UUID]  # (game_id, event_id): each game picks its own event ids


@dataclass(frozen=True)
class BatchOutcome:
    applied: int
    duplicates: int
    commands_to_publish: list[RewardCommand]


# Rows travel as one JSON document per statement: jsonb_to_recordset is far cheaper than
# adapting a dozen Python lists to PostgreSQL arrays, and pydantic-core's encoder writes
# UUIDs, datetimes, decimals and payload models directly (3x faster than json.dumps).
_INSERT_EVENTS = text(
    """
    INSERT INTO processed_events (event_id, game_id, player_id, type, payload, occurred_at,
        client_occurred_at, sent_at, received_at, processed_at, source_partition, source_offset)
    SELECT e.event_id, e.game_id, e.player_id, e.type, e.payload, e.occurred_at,
        e.client_occurred_at, e.sent_at, e.received_at, clock_timestamp(), e.part, e.off
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS e(event_id uuid, game_id text,
        player_id text, type text, payload jsonb, occurred_at timestamptz,
        client_occurred_at timestamptz, sent_at timestamptz, received_at timestamptz,
        part smallint, off bigint)
    ON CONFLICT (game_id, event_id) DO NOTHING
    RETURNING game_id, event_id
    """
)

_UPSERT_TOTALS = text(
    """
    INSERT INTO player_totals AS t (game_id, player_id, events, matches, wins, losses, draws,
        total_score, best_score, purchases, token_spent, achievements, sessions, play_seconds,
        first_event_at, last_event_at, updated_at)
    SELECT d.*, clock_timestamp()
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS d(game_id text, player_id text,
        events bigint, matches int, wins int, losses int, draws int, total_score bigint,
        best_score bigint, purchases int, token_spent numeric, achievements int, sessions int,
        play_seconds double precision, first_event_at timestamptz, last_event_at timestamptz)
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


_INSERT_COMMANDS = text(
    """
    INSERT INTO reward_commands (command_id, source_event_id, action, status, game_id,
        player_id, token, amount, reason, issued_at, updated_at)
    SELECT c.command_id, c.source_event_id, c.action, 'pending', c.game_id, c.player_id,
        c.token, c.amount, c.reason, c.issued_at, clock_timestamp()
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS c(command_id uuid, source_event_id uuid,
        action text, game_id text, player_id text, token text, amount numeric, reason text,
        issued_at timestamptz)
    ON CONFLICT (command_id) DO NOTHING
    """
)


def apply_batch(
    engine: Engine,
    consumed: Sequence[ConsumedEvent],
    rules: RewardRules,
) -> BatchOutcome:
    """Write a batch in one transaction; see the module docstring for the guarantees."""
    unique: dict[EventKey, ConsumedEvent] = {}
    for item in consumed:
        unique.setdefault((item.value.game_id, item.value.event_id), item)
    if not unique:
        return BatchOutcome(0, len(consumed), [])
    now = datetime.now(UTC)
    occurred: dict[EventKey, datetime] = {}
    event_rows = []
    for key, c in unique.items():  # one pass: the rows and the corrected times
        e = c.value
        received = e.received_at or c.record_time  # the Kafka record time if the API's is absent
        occurred[key] = at = corrected_time(e, received)
        event_rows.append(
            {
                "event_id": e.event_id,
                "game_id": e.game_id,
                "player_id": e.player_id,
                "type": e.type,
                "payload": e.payload,
                "occurred_at": at,
                "client_occurred_at": e.occurred_at,
                "sent_at": e.sent_at,
                "received_at": received,
                "part": c.partition,
                "off": c.offset,
            }
        )
    with engine.begin() as conn:
        inserted = {tuple(row) for row in conn.execute(_INSERT_EVENTS, json_rows(event_rows))}
        new = [c.value for key, c in unique.items() if key in inserted]
        if new:
            _add_totals(conn, new, occurred, rules.token)
        commands = [cmd for e in new for cmd in reward_commands_for(e, rules, now)]
        if commands:
            _insert_commands(conn, commands)
        if new:  # achievements and battle passes, from the new events only (after totals)
            commands += advance_progress(conn, new, rules.token)
        duplicates = [key for key in unique if key not in inserted]
        if duplicates:
            commands += _pending_commands_of(conn, duplicates)
        # Last: it locks the game's leaderboard definitions until the commit, and every
        # writer of that game waits for the lock.
        submit_scores(
            conn,
            [_submission(e, occurred[(e.game_id, e.event_id)]) for e in new if e.score is not None],
        )
    return BatchOutcome(len(new), len(consumed) - len(new), commands)


def _submission(event: GameEvent, occurred_at: datetime) -> ScoreSubmission:
    assert event.score is not None
    return ScoreSubmission(
        game_id=event.game_id,
        owner_id=event.player_id,
        score=event.score,
        event_id=event.event_id,
        occurred_at=occurred_at,
    )


def _add_totals(
    conn: Connection,
    new: Sequence[GameEvent],
    occurred: dict[EventKey, datetime],
    token: str,
) -> None:
    deltas = fold_totals(((e, occurred[(e.game_id, e.event_id)]) for e in new), token)
    conn.execute(_UPSERT_TOTALS, json_rows([vars(d) for d in deltas]))


def _insert_commands(conn: Connection, commands: Sequence[RewardCommand]) -> None:
    # The models themselves: their JSON carries every column (and schema_version, which
    # jsonb_to_recordset ignores), without a dict per command first.
    conn.execute(_INSERT_COMMANDS, {"rows": pydantic_core.to_json(list(commands)).decode()})


def _pending_commands_of(conn: Connection, keys: Sequence[EventKey]) -> list[RewardCommand]:
    table = RewardCommandRow.__table__
    rows = conn.execute(
        select(table).where(
            tuple_(table.c.game_id, table.c.source_event_id).in_(keys),
            table.c.status == RewardStatus.pending,
        )
    ).mappings()
    return [
        RewardCommand.model_validate(
            {k: v for k, v in r.items() if k in RewardCommand.model_fields}
        )
        for r in rows
    ]
