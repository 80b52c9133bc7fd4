"""Achievements and battle-pass XP from the game-event stream, through the real pipeline:
API → Kafka → the scoring worker's batch transaction → PostgreSQL. The same events sent
again (a game server's retry, a replay) unlock nothing twice and add no XP."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.content import achievements, catalog
from core.content.achievements import AchievementSpec
from core.content.catalog import ContentSpec, Rewards, TierSpec
from core.content.catalog_models import ContentKind
from tests.streaming_helpers import (  # noqa: F401 - fixtures
    GameWithKey,
    api_fixture,
    game_fixture,
    match_event,
    post_batch,
    wait_processed,
    worker_fixture,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]


def test_replayed_events_unlock_an_achievement_once_through_the_worker(
    db_engine: Engine, game: GameWithKey, api: httpx.Client
) -> None:
    g = game.game_id
    with Session(db_engine) as session, session.begin():
        achievements.create_achievement(
            session,
            g,
            "two-wins",
            AchievementSpec(
                name="Win 2", metric="wins", threshold=2, rewards=Rewards(xp=5, tokens=3)
            ),  # type: ignore[arg-type]
        )
        catalog.create_content(
            session,
            g,
            "s1",
            ContentSpec(
                kind=ContentKind.battle_pass,
                name="S1",
                xp_rules={"match_won": 10},
                tiers=[TierSpec(tier=1, xp_required=20, rewards=Rewards(tokens=1))],  # type: ignore[arg-type]
            ),
        )
    wins = [match_event("ace", "win", 10) for _ in range(3)]
    post_batch(api, game.api_key, wins)
    wait_processed(db_engine, g, 3)
    post_batch(api, game.api_key, wins)  # the same event ids again
    post_batch(api, game.api_key, [match_event("ace", "loss", 1)])
    wait_processed(db_engine, g, 4)  # the marker was applied: the duplicates came before it

    with db_engine.connect() as conn:
        progress = conn.execute(
            text(
                "SELECT value, unlocked_at IS NOT NULL FROM achievement_progress WHERE game_id = :g"
            ),
            {"g": g},
        ).all()
        xp = conn.execute(
            text("SELECT xp, tier FROM battle_pass_progress WHERE game_id = :g"), {"g": g}
        ).all()
        mints = conn.execute(
            text(
                "SELECT reason, amount FROM reward_commands WHERE game_id = :g "
                "AND reason NOT LIKE 'match%' ORDER BY reason"
            ),
            {"g": g},
        ).all()
        grants = conn.execute(
            text("SELECT count(*) FROM grants WHERE game_id = :g"), {"g": g}
        ).scalar_one()
    # unlocked once; its value froze at the batch that crossed 2 (the wins may share one)
    assert len(progress) == 1 and progress[0][1] and progress[0][0] in (2, 3)
    assert xp == [(3 * 10 + 5, 1)]  # three wins and the achievement's XP, once each
    assert [(r, int(a)) for r, a in mints] == [("achievement:two-wins", 3), ("battle_pass:s1:1", 1)]
    assert grants == 2
