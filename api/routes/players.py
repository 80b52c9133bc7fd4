"""``/v1/players``: link a game's player to the app user who plays it, with both consenting.

The app user asks for a link code for a game (bearer token); the game server redeems it for
one of its players (``X-Api-Key``). Neither alone can link. Who owns a player is never
public: a game asks about its own players, a user sees their own links. See docs/wallets.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api.auth import (
    APP_USER_ERRORS,
    GAME_KEY_ERRORS,
    QUOTA_ERRORS,
    AppUserDep,
    Caller,
    GameDep,
    spend_quota,
)
from api.body import limited_body_route
from api.deps import EngineDep, SettingsDep
from api.errors import NOT_JSON, error_responses
from core.identity import players
from core.identity.ids import GAME_ID_PATTERN, PLAYER_ID_PATTERN

MAX_BODY_BYTES = 4 * 1024

router = APIRouter(
    prefix="/v1/players",
    tags=["players"],
    route_class=limited_body_route(lambda _settings: MAX_BODY_BYTES, "send one small object"),
)


class LinkCodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    game_id: str = Field(pattern=GAME_ID_PATTERN, description="The game whose player to link")


class LinkCodePublic(BaseModel):
    code: str = Field(description="Give it to the game (shown once; case and dashes ignored)")
    game_id: str
    expires_at: datetime


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        min_length=10, max_length=16, pattern=r"^[0-9A-Za-z -]+$", description="The user's code"
    )
    player_id: str = Field(pattern=PLAYER_ID_PATTERN, description="The game's id of the player")


class PlayerLinkPublic(BaseModel):
    game_id: str
    player_id: str
    user_id: str = Field(description="The app user the player belongs to")
    linked_at: datetime


class LinkPublic(PlayerLinkPublic):
    created: bool = Field(description="False when the player was already this user's")


class OwnedPlayersPublic(BaseModel):
    players: list[PlayerLinkPublic]


GameId = Annotated[str, Path(pattern=GAME_ID_PATTERN, description="Game id")]
PlayerId = Annotated[str, Path(pattern=PLAYER_ID_PATTERN, description="The game's player id")]


def _public(link: players.PlayerLinkView) -> PlayerLinkPublic:
    return PlayerLinkPublic(
        game_id=link.game_id,
        player_id=link.player_id,
        user_id=link.user_id,
        linked_at=link.linked_at,
    )


@router.post(
    "/link-codes",
    status_code=201,
    response_model=LinkCodePublic,
    summary="A short-lived single-use code to link one of your players in a game (app user)",
    responses={
        **APP_USER_ERRORS,
        **QUOTA_ERRORS,
        **NOT_JSON,
        **error_responses({404: "No active game with this id (game_not_found)"}),
    },
)
def issue_link_code(
    request: Request,
    body: LinkCodeRequest,
    user_id: AppUserDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> LinkCodePublic:
    spend_quota(request, settings, Caller(None, user_id))
    with Session(engine) as session, session.begin():
        issued = players.issue_link_code(
            session,
            user_id,
            body.game_id,
            ttl=timedelta(seconds=settings.player_link_code_ttl_s),
            keep=settings.player_max_link_codes_per_user,
            now=datetime.now(UTC),
        )
    return LinkCodePublic(code=issued.code, game_id=issued.game_id, expires_at=issued.expires_at)


@router.post(
    "/link",
    response_model=LinkPublic,
    summary="Redeem a user's link code for one of the game's players (game server key)",
    responses={
        **GAME_KEY_ERRORS,
        **QUOTA_ERRORS,
        **NOT_JSON,
        **error_responses(
            {
                404: "No such code (link_code_unknown)",
                409: "Code already used (link_code_used) or the player is another user's "
                "(player_linked_to_another_user)",
                422: "The code expired (link_code_expired) or a field is invalid",
            }
        ),
    },
)
def redeem_link_code(
    request: Request,
    body: LinkRequest,
    game_id: GameDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> LinkPublic:
    spend_quota(request, settings, Caller(game_id, None))
    with Session(engine) as session, session.begin():
        link, created = players.redeem_link_code(
            session, game_id, body.code, body.player_id, now=datetime.now(UTC)
        )
    return LinkPublic(**_public(link).model_dump(), created=created)


@router.get(
    "/links",
    response_model=OwnedPlayersPublic,
    summary="The signed-in user's players, in every game",
    responses={**APP_USER_ERRORS},
)
def my_players(user_id: AppUserDep, engine: EngineDep) -> OwnedPlayersPublic:
    with Session(engine) as session:
        links = players.players_of_user(session, user_id)
    return OwnedPlayersPublic(players=[_public(link) for link in links])


@router.delete(
    "/links/{game_id}/{player_id}",
    status_code=204,
    summary="Unlink one of your players (app user)",
    responses={
        **APP_USER_ERRORS,
        **QUOTA_ERRORS,
        **error_responses({404: "That player is not linked to you (player_link_not_found)"}),
    },
)
def unlink_player(
    request: Request,
    game_id: GameId,
    player_id: PlayerId,
    user_id: AppUserDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> None:
    spend_quota(request, settings, Caller(None, user_id))
    with Session(engine) as session, session.begin():
        players.unlink_player(session, user_id, game_id, player_id)


@router.get(
    "/{player_id}/owner",
    response_model=PlayerLinkPublic,
    summary="Which app user one of the game's players is linked to (game server key)",
    responses={**GAME_KEY_ERRORS, **error_responses({404: "Not linked (player_link_not_found)"})},
)
def player_owner(player_id: PlayerId, game_id: GameDep, engine: EngineDep) -> PlayerLinkPublic:
    with Session(engine) as session:
        link = players.player_link(session, game_id, player_id)
    return _public(link)
