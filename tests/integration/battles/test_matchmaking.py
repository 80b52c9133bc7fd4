"""Matchmaking on the real PostgreSQL: concurrent passes never double-book a ticket or a
player, stale tickets expire, one waiting ticket per player, and tickets survive passes."""

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.battles import matchmaking
from core.platform.config import Settings
from tests.streaming_helpers import GameWithKey, game_fixture  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


def join(engine: Engine, game_id: str, player: str, mode: str, now: datetime) -> None:
    with Session(engine) as session, session.begin():
        matchmaking.join_queue(session, game_id, player, mode, now=now)


def test_concurrent_passes_never_double_book(
    db_engine: Engine, game: GameWithKey, stack_settings: Settings
) -> None:
    settings = stack_settings.model_copy(update={"battles_match_window": 1000.0})
    now = datetime.now(UTC)
    for i in range(60):
        join(db_engine, game.game_id, f"m{i}", "duel", now)

    battles: list = []
    start = threading.Barrier(6)

    def matcher() -> None:
        start.wait()
        for _ in range(5):
            outcome = matchmaking.match_pass(db_engine, game.game_id, "duel", settings, now=now)
            battles.extend(outcome.battles)

    threads = [threading.Thread(target=matcher) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    players = Counter(p for b in battles for side in b.sides for p in side)
    assert len(battles) == 30
    assert set(players.values()) == {1}
    with db_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT status, count(*), count(DISTINCT battle_id) FROM match_tickets"
                " WHERE game_id = :g GROUP BY status"
            ),
            {"g": game.game_id},
        ).all()
        queued = conn.execute(
            text("SELECT count(*) FROM battles WHERE game_id = :g AND status = 'queued'"),
            {"g": game.game_id},
        ).scalar_one()
    assert [tuple(r) for r in rows] == [("matched", 60, 30)]
    assert queued == 30


def test_one_waiting_ticket_per_player_and_stale_tickets_expire(
    db_engine: Engine, game: GameWithKey, stack_settings: Settings
) -> None:
    long_ago = datetime.now(UTC) - timedelta(seconds=stack_settings.battles_ticket_ttl_s + 1)
    join(db_engine, game.game_id, "old", "duel", long_ago)
    with pytest.raises(matchmaking.AlreadyWaiting):
        join(db_engine, game.game_id, "old", "ranked", long_ago)
    outcome = matchmaking.match_pass(
        db_engine, game.game_id, "duel", stack_settings, now=datetime.now(UTC)
    )
    assert (outcome.matched, outcome.expired, outcome.battles) == (0, 1, [])
    join(db_engine, game.game_id, "old", "duel", datetime.now(UTC))  # may wait again
    with Session(db_engine) as session:
        statuses = (
            session.execute(
                text("SELECT status FROM match_tickets WHERE game_id = :g ORDER BY created_at"),
                {"g": game.game_id},
            )
            .scalars()
            .all()
        )
    assert statuses == ["expired", "waiting"]


def test_far_ratings_wait_then_match_once_the_window_widened(
    db_engine: Engine, game: GameWithKey, stack_settings: Settings
) -> None:
    joined = datetime.now(UTC)
    join(db_engine, game.game_id, "low", "duel", joined)
    with db_engine.begin() as conn:
        conn.execute(
            text("UPDATE match_tickets SET mu = 40 WHERE game_id = :g"), {"g": game.game_id}
        )
    join(db_engine, game.game_id, "mid", "duel", joined)  # mu 25: 15 points apart
    first = matchmaking.match_pass(db_engine, game.game_id, "duel", stack_settings, now=joined)
    assert first.battles == []
    later = joined + timedelta(seconds=13)  # 3 + 1/s * 13 = 16 >= 15
    second = matchmaking.match_pass(db_engine, game.game_id, "duel", stack_settings, now=later)
    assert [sorted(p for s in b.sides for p in s) for b in second.battles] == [["low", "mid"]]
    assert matchmaking.unpublished(db_engine, game.game_id, later + timedelta(seconds=1)) == [
        second.battles[0]
    ]
