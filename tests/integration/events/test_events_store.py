"""The scoring transaction against real PostgreSQL: event ids are unique per game."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.events.contracts import GameEvent, MatchResult
from core.events.store import apply_batch
from core.identity.game_keys import create_game
from core.platform.db import session_scope
from core.platform.messages import Consumed
from core.rewards.commands import RewardRules


def _win(game_id: str, event_id: uuid.UUID) -> Consumed[GameEvent]:
    event = GameEvent(
        event_id=event_id,
        game_id=game_id,
        player_id="p1",
        type="match_result",
        payload=MatchResult(outcome="win", score=7),
        occurred_at=datetime.now(UTC),
        received_at=datetime.now(UTC),
    )
    return Consumed(event, 0, 0, datetime.now(UTC))


def test_two_games_may_use_the_same_event_id_and_replays_still_count_once(
    db_engine: Engine,
) -> None:
    games = [f"ids-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with session_scope() as session:
        for game in games:
            create_game(session, game, game_id=game)
    shared = uuid.uuid4()
    batch = [_win(game, shared) for game in games]

    first = apply_batch(db_engine, batch, RewardRules())
    replay = apply_batch(db_engine, batch, RewardRules())

    assert (first.applied, first.duplicates) == (2, 0)  # game B's event is its own
    assert len({c.command_id for c in first.commands_to_publish}) == 2
    assert (replay.applied, replay.duplicates) == (0, 2)
    assert {c.command_id for c in replay.commands_to_publish} == {
        c.command_id for c in first.commands_to_publish
    }  # still pending: re-published with the same ids, never new ones
    with db_engine.connect() as conn:
        wins = conn.execute(
            text("SELECT game_id, wins FROM player_totals WHERE game_id = ANY(:g)"),
            {"g": games},
        ).all()
        commands = conn.execute(
            text("SELECT count(*) FROM reward_commands WHERE source_event_id = :e"),
            {"e": shared},
        ).scalar_one()
    assert sorted(wins) == sorted((game, 1) for game in games)
    assert commands == 2
