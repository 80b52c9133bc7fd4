"""Who is calling: a game server (``X-Api-Key``) or an app user (``Authorization: Bearer``).

Both credentials are looked up the same way: one cached lookup per app
(:func:`api.deps.per_app`), answered from the cache on the event loop when it can
(:func:`api.deps.credential_owner`). Each dependency answers 401 when its credential is
missing and 403 when it is not the credential of any active owner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine

from api.deps import EngineDep, SettingsDep, credential_owner, per_app
from api.errors import error_responses
from core.identity.app_users import TokenAuthenticator
from core.identity.credentials import CachedCredentialLookup
from core.identity.game_keys import KeyAuthenticator
from core.platform.config import Settings
from core.platform.quotas import Quota, retry_after_header


@dataclass(frozen=True)
class _Credential:
    """One kind of credential: where its lookup is kept and what an invalid one is told."""

    state_name: str
    lookup: Callable[[Engine, float], CachedCredentialLookup]
    ttl_s: Callable[[Settings], float]
    not_valid: str

    async def owner(self, request: Request, settings: Settings, engine: Engine, secret: str) -> str:
        """The id of the secret's active owner; 403 when there is none."""
        lookup = per_app(
            request, self.state_name, lambda: self.lookup(engine, self.ttl_s(settings))
        )
        owner = await credential_owner(lookup, secret)
        if owner is None:
            raise HTTPException(403, self.not_valid)
        return owner


_GAME_KEY = _Credential(
    "game_key_authenticator",
    KeyAuthenticator,
    lambda s: s.game_key_cache_ttl_s,
    "X-Api-Key is not the key of any active game",
)
_APP_TOKEN = _Credential(
    "app_token_authenticator",
    TokenAuthenticator,
    lambda s: s.app_token_cache_ttl_s,
    "the bearer token is not the token of any active app user",
)


# Security schemes (not plain headers), so that /docs shows "Authorize" for both.
_API_KEY = APIKeyHeader(
    name="X-Api-Key",
    scheme_name="GameKey",
    description="The game server's API key (`stride games create NAME` prints it once)",
    auto_error=False,
)
_BEARER = HTTPBearer(
    scheme_name="AppUserToken",
    description="The app user's token (`stride users create USER_ID` prints it once)",
    auto_error=False,
)


async def authenticated_game(
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    x_api_key: Annotated[str | None, Security(_API_KEY)] = None,
) -> str:
    """The game id of the request's API key: 401 when missing, 403 when not valid."""
    if not x_api_key:
        raise HTTPException(
            401,
            "missing X-Api-Key header: send the game's API key (create one with "
            "`stride games create NAME`)",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    return await _GAME_KEY.owner(request, settings, engine, x_api_key)


async def authenticated_user(
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
) -> str:
    """The user id of the request's bearer token: 401 when missing, 403 when not valid."""
    token = bearer.credentials if bearer else ""
    if not token.strip():
        raise HTTPException(
            401,
            "missing or malformed Authorization header: send 'Authorization: Bearer <token>' "
            "with the app user's token (create one with `stride users create USER_ID`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return await _APP_TOKEN.owner(request, settings, engine, token.strip())


@dataclass(frozen=True)
class Caller:
    """Who sent a request that a game server or an app user may send."""

    game_id: str | None  # a game server, by its X-Api-Key
    user_id: str | None  # an app user, by their bearer token

    def may_act_for(self, user_id: str) -> bool:
        """A game server acts for its players; an app user only for themself."""
        return self.game_id is not None or self.user_id == user_id


async def authenticated_caller(
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    x_api_key: Annotated[str | None, Security(_API_KEY)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
) -> Caller:
    """A game's API key or an app user's token, whichever the request carries: 401 with
    neither, 403 when the one sent is not valid."""
    if x_api_key:
        return Caller(await _GAME_KEY.owner(request, settings, engine, x_api_key), None)
    if bearer and bearer.credentials.strip():
        token = bearer.credentials.strip()
        return Caller(None, await _APP_TOKEN.owner(request, settings, engine, token))
    raise HTTPException(
        401,
        "missing credentials: a game server sends its X-Api-Key, the app sends "
        "'Authorization: Bearer <token>' of the signed-in user",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _quota(request: Request, settings: Settings, of_games: bool) -> Quota:
    """This worker's share of the game-key or app-user write quota."""
    workers = max(1, settings.api_workers)
    if of_games:
        return per_app(
            request,
            "game_write_quota",
            lambda: Quota(
                settings.api_game_events_per_s / workers, settings.api_game_events_burst / workers
            ),
        )
    return per_app(
        request,
        "user_write_quota",
        lambda: Quota(
            settings.api_user_writes_per_min / 60 / workers,
            settings.api_user_writes_burst / workers,
        ),
    )


def spend_quota(request: Request, settings: Settings, caller: Caller, units: float = 1) -> None:
    """Charge a write to its game key or app user; 429 with Retry-After over the quota."""
    of_games = caller.game_id is not None
    owner = caller.game_id if of_games else caller.user_id
    assert owner is not None
    wait = _quota(request, settings, of_games).take(owner, units)
    if wait is not None:
        who = f"game {owner!r}" if of_games else f"app user {owner!r}"
        raise HTTPException(
            429,
            f"{who} is over its write quota; nothing from this request was accepted, retry "
            "it after Retry-After seconds",
            headers={"Retry-After": retry_after_header(wait)},
        )


GameDep = Annotated[str, Depends(authenticated_game)]
"""The id of the game whose ``X-Api-Key`` the request carries."""
AppUserDep = Annotated[str, Depends(authenticated_user)]
"""The id of the app user whose bearer token the request carries."""
CallerDep = Annotated[Caller, Depends(authenticated_caller)]
"""A game server or an app user (:class:`Caller`)."""

GAME_KEY_ERRORS = error_responses({401: "X-Api-Key header missing", 403: "X-Api-Key not valid"})
APP_USER_ERRORS = error_responses({401: "Authorization header missing", 403: "Token not valid"})
CALLER_ERRORS = error_responses(
    {401: "Neither X-Api-Key nor a bearer token", 403: "Key or token not valid, or another user"}
)
QUOTA_ERRORS = error_responses({429: "Over the write quota of the key or user; see Retry-After"})
