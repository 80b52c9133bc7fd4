"""Achievement definitions of a game (the studio's) and each player's progress (reads).

An achievement is a metric of the player reaching a threshold: one of the player's totals
(``wins >= 10``, ``matches``, ``total_score``, ...) or ``level``, the highest numeric level
of their ``score`` events (``reach level 20``). Progress is advanced by the scoring batch
(:mod:`core.content.progress`); definitions are versioned like the catalog's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.content.catalog import (
    Definition,
    Description,
    Name,
    Rewards,
    Spec,
    check_items_exist,
    create_definition,
    update_definition,
)
from core.content.catalog_models import (
    AchievementDefinition,
    AchievementProgress,
    BattlePassProgress,
)
from core.platform.versions import Precondition

Metric = Literal[
    "events",
    "matches",
    "wins",
    "losses",
    "draws",
    "total_score",
    "best_score",
    "purchases",
    "sessions",
    "achievements",
    "level",
]
METRICS: tuple[str, ...] = get_args(Metric)

ACHIEVEMENTS = Definition(AchievementDefinition, "achievement_id", "achievement")


class AchievementSpec(Spec):
    name: Name
    description: Description = ""
    metric: Metric = Field(description="A total of the player, or level (highest reached)")
    threshold: Annotated[int, Field(ge=1, le=10**15)]
    rewards: Rewards = Field(default_factory=Rewards)


def _values(spec: AchievementSpec) -> dict[str, Any]:
    return {**spec.model_dump(exclude={"rewards"}), "rewards": spec.rewards.model_dump(mode="json")}


def create_achievement(
    session: Session, game_id: str, achievement_id: str, spec: AchievementSpec
) -> AchievementDefinition:
    check_items_exist(session, game_id, {i.item_id for i in spec.rewards.items})
    return create_definition(session, ACHIEVEMENTS, game_id, achievement_id, _values(spec))


def replace_achievement(
    session: Session,
    game_id: str,
    achievement_id: str,
    spec: AchievementSpec,
    expected: Precondition | None,
    now: datetime,
) -> AchievementDefinition:
    check_items_exist(session, game_id, {i.item_id for i in spec.rewards.items})
    return update_definition(
        session,
        ACHIEVEMENTS,
        game_id,
        achievement_id,
        {**_values(spec), "is_active": True},
        expected,
        now,
    )


def achievement_spec(row: AchievementDefinition) -> AchievementSpec:
    return AchievementSpec(
        name=row.name,
        description=row.description,
        metric=row.metric,  # type: ignore[arg-type]
        threshold=row.threshold,
        rewards=Rewards(**row.rewards),
    )


def progress_of(
    session: Session, game_id: str, player_id: str
) -> list[tuple[AchievementDefinition, AchievementProgress | None]]:
    """Every active achievement of the game with the player's progress (None: not started)."""
    rows = session.execute(
        select(AchievementDefinition, AchievementProgress)
        .outerjoin(
            AchievementProgress,
            (AchievementProgress.game_id == AchievementDefinition.game_id)
            & (AchievementProgress.achievement_id == AchievementDefinition.achievement_id)
            & (AchievementProgress.player_id == player_id),
        )
        .where(AchievementDefinition.game_id == game_id, AchievementDefinition.is_active)
        .order_by(AchievementDefinition.achievement_id)
    ).all()
    return [(d, p) for d, p in rows]


def battle_passes_of(session: Session, game_id: str, player_id: str) -> list[BattlePassProgress]:
    return list(
        session.scalars(
            select(BattlePassProgress)
            .where(BattlePassProgress.game_id == game_id, BattlePassProgress.player_id == player_id)
            .order_by(BattlePassProgress.content_id)
        )
    )
