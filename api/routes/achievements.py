"""``/v1/achievements``: the game's achievement definitions (game key writes, ``ETag`` /
``If-Match``), and progress: a player's (game key) or the signed-in user's linked player's
(app user), with their battle-pass XP and tiers. Progress is advanced by the scoring agent
from the game-event stream (core/content/progress.py), never through this API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api.auth import (
    APP_USER_ERRORS,
    CALLER_ERRORS,
    GAME_KEY_ERRORS,
    QUOTA_ERRORS,
    AppUserDep,
    CallerDep,
    GameDep,
)
from api.deps import EngineDep
from api.errors import NOT_JSON, error_responses
from api.etags import IfMatchHeader, IfNoneMatch, not_modified, precondition, set_etag
from api.routes.catalog_common import (
    CONFLICT,
    NOT_FOUND,
    STALE,
    GameIdQuery,
    Limit,
    RequiredGameId,
    game_of,
    now,
    route_class,
)
from core.content import achievements, catalog
from core.content.achievements import ACHIEVEMENTS, AchievementSpec
from core.content.catalog import CATALOG_ID_PATTERN, CatalogId
from core.content.catalog_models import AchievementDefinition
from core.identity import players
from core.identity.ids import PLAYER_ID_PATTERN

router = APIRouter(prefix="/v1/achievements", tags=["achievements"], route_class=route_class)

AchievementIdPath = Annotated[str, Path(pattern=CATALOG_ID_PATTERN)]
PlayerIdPath = Annotated[str, Path(pattern=PLAYER_ID_PATTERN, description="The game's player")]


class AchievementCreate(AchievementSpec):
    achievement_id: CatalogId


class AchievementPublic(AchievementSpec):
    model_config = ConfigDict(extra="ignore", frozen=True)

    achievement_id: str
    is_active: bool
    version: int = Field(description="The ETag's number: send it back in If-Match")
    created_at: datetime
    updated_at: datetime


class AchievementPage(BaseModel):
    achievements: list[AchievementPublic]
    next_after: str | None


class ProgressPublic(BaseModel):
    achievement_id: str
    name: str
    metric: str
    threshold: int
    value: int = Field(description="The player's value of the metric (0: not started)")
    unlocked_at: datetime | None


class BattlePassPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    content_id: str
    xp: int
    tier: int = Field(description="The highest tier reached (each granted once)")


class PlayerProgressPublic(BaseModel):
    game_id: str
    player_id: str
    achievements: list[ProgressPublic]
    battle_passes: list[BattlePassPublic]


def _public(row: AchievementDefinition) -> AchievementPublic:
    spec = achievements.achievement_spec(row)
    return AchievementPublic(
        **spec.model_dump(),
        achievement_id=row.achievement_id,
        is_active=row.is_active,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _progress(engine: Any, game_id: str, player_id: str) -> PlayerProgressPublic:
    with Session(engine) as session:
        pairs = achievements.progress_of(session, game_id, player_id)
        passes = achievements.battle_passes_of(session, game_id, player_id)
        return PlayerProgressPublic(
            game_id=game_id,
            player_id=player_id,
            achievements=[
                ProgressPublic(
                    achievement_id=d.achievement_id,
                    name=d.name,
                    metric=d.metric,
                    threshold=d.threshold,
                    value=p.value if p else 0,
                    unlocked_at=p.unlocked_at if p else None,
                )
                for d, p in pairs
            ],
            battle_passes=[BattlePassPublic.model_validate(b) for b in passes],
        )


@router.get(
    "/progress/players/{player_id}",
    response_model=PlayerProgressPublic,
    summary="A player's achievements and battle passes (game key)",
    responses={**GAME_KEY_ERRORS},
)
def player_progress(
    player_id: PlayerIdPath, game_id: GameDep, engine: EngineDep
) -> PlayerProgressPublic:
    return _progress(engine, game_id, player_id)


@router.get(
    "/progress/me",
    response_model=PlayerProgressPublic,
    summary="Your linked player's achievements and battle passes in a game (app user)",
    responses={**APP_USER_ERRORS, **error_responses({404: "No player of yours in this game"})},
)
def my_progress(
    user_id: AppUserDep, engine: EngineDep, game_id: RequiredGameId
) -> PlayerProgressPublic:
    with Session(engine) as session:
        mine = [p for p in players.players_of_user(session, user_id) if p.game_id == game_id]
    if not mine:
        raise players.UnknownPlayerLink(
            f"you have no player in game {game_id!r}: link one first (POST /v1/players/link-codes)"
        )
    return _progress(engine, game_id, mine[0].player_id)


@router.get(
    "",
    response_model=AchievementPage,
    summary="The game's achievements, by id",
    responses={**CALLER_ERRORS},
)
def list_achievements(
    caller: CallerDep,
    engine: EngineDep,
    game_id: GameIdQuery = None,
    after: Annotated[str | None, Query(pattern=CATALOG_ID_PATTERN)] = None,
    limit: Limit = 50,
    include_archived: bool = False,
) -> AchievementPage:
    with Session(engine) as session:
        rows = catalog.list_definitions(
            session,
            ACHIEVEMENTS,
            game_of(caller, game_id),
            after=after,
            limit=limit,
            include_archived=include_archived,
        )
        return AchievementPage(
            achievements=[_public(r) for r in rows],
            next_after=rows[-1].achievement_id if len(rows) == limit else None,
        )


@router.post(
    "",
    status_code=201,
    response_model=AchievementPublic,
    summary="Define an achievement (game key)",
    responses={**GAME_KEY_ERRORS, **QUOTA_ERRORS, **NOT_JSON, **CONFLICT},
)
def create_achievement(
    body: AchievementCreate, game_id: GameDep, engine: EngineDep, response: Response
) -> AchievementPublic:
    spec = AchievementSpec(**body.model_dump(exclude={"achievement_id"}))
    with Session(engine) as session, session.begin():
        public = _public(
            achievements.create_achievement(session, game_id, body.achievement_id, spec)
        )
    set_etag(response, public.version)
    return public


@router.get(
    "/{achievement_id}",
    response_model=AchievementPublic,
    summary="One achievement, with its ETag (If-None-Match: 304)",
    responses={**CALLER_ERRORS, **NOT_FOUND},
)
def get_achievement(
    achievement_id: AchievementIdPath,
    caller: CallerDep,
    engine: EngineDep,
    response: Response,
    game_id: GameIdQuery = None,
    if_none_match: IfNoneMatch = None,
) -> AchievementPublic | Response:
    with Session(engine) as session:
        row = catalog.get_definition(
            session, ACHIEVEMENTS, game_of(caller, game_id), achievement_id
        )
        public = _public(row)
    if (unchanged := not_modified(if_none_match, public.version)) is not None:
        return unchanged
    set_etag(response, public.version)
    return public


@router.put(
    "/{achievement_id}",
    response_model=AchievementPublic,
    summary="Replace an achievement (game key); If-Match makes it conditional",
    responses={**GAME_KEY_ERRORS, **QUOTA_ERRORS, **NOT_JSON, **NOT_FOUND, **STALE},
)
def replace_achievement(
    achievement_id: AchievementIdPath,
    body: AchievementSpec,
    game_id: GameDep,
    engine: EngineDep,
    response: Response,
    if_match: IfMatchHeader = None,
) -> AchievementPublic:
    expected = precondition(if_match)
    with Session(engine) as session, session.begin():
        row = achievements.replace_achievement(
            session, game_id, achievement_id, body, expected, now()
        )
        public = _public(row)
    set_etag(response, public.version)
    return public


@router.delete(
    "/{achievement_id}",
    status_code=204,
    summary="Archive an achievement (game key): progress stops; unlocks stay",
    responses={**GAME_KEY_ERRORS, **QUOTA_ERRORS, **NOT_FOUND, **STALE},
)
def archive_achievement(
    achievement_id: AchievementIdPath,
    game_id: GameDep,
    engine: EngineDep,
    if_match: IfMatchHeader = None,
) -> None:
    expected = precondition(if_match)
    with Session(engine) as session, session.begin():
        catalog.archive(session, ACHIEVEMENTS, game_id, achievement_id, expected, now())
