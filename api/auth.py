"""Who is calling: a game server (``X-Api-Key``) or an app user (``Authorization: Bearer``).

Both credentials are looked up the same way: one cached lookup per app
(:func:`api.deps.per_app`), answered from the cache on the event loop when it can
(:func:`api.deps.credential_owner`). Each dependency answers 401 when its credential is
missing and 403 when it is not the credential of any active owner.

FastAPI reads and parses a route's JSON body before it solves the route's dependencies, so
a stranger could make the API parse a body up to its size limit on every call. A route
built by :func:`authenticating_first` (``api.body.limited_body_route`` does it) checks its
credential from the headers before anything of the body is received
(:func:`authenticate_from_headers`); the dependency then answers what was found. Routes
that read their body themselves (events, spooled uploads) do so after their dependencies.
Write quotas per credential are the front door's (``deploy/nginx/``), before all this.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response, Security
from fastapi.dependencies.models import Dependant
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine

from api.deps import EngineDep, SettingsDep, credential_owner, per_app
from api.errors import error_responses
from core.identity.app_users import TokenAuthenticator
from core.identity.credentials import CachedCredentialLookup
from core.identity.game_keys import KeyAuthenticator
from core.platform.config import Settings, get_settings
from core.platform.db import get_engine


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
    if (checked := _checked_before(request, authenticated_game)) is not None:
        return checked
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
    if (checked := _checked_before(request, authenticated_user)) is not None:
        return checked
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
    if (checked := _checked_before(request, authenticated_caller)) is not None:
        return checked
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


_CHECKED = "credential_checked"  # request.state: (dependency, what it answered)
CREDENTIAL_DEPENDENCIES: tuple[Callable[..., Any], ...] = (
    authenticated_game,
    authenticated_user,
    authenticated_caller,
)


def _checked_before(request: Request, dependency: Callable[..., Any]) -> Any:
    """What ``dependency`` answered when the route checked it before reading the body."""
    checked = getattr(request.state, _CHECKED, None)
    if checked is not None and checked[0] is dependency:
        return checked[1]
    return None


def credential_dependency(dependant: Dependant) -> Callable[..., Any] | None:
    """The credential dependency (game key, app user, either) a route needs, if any,
    declared on the route itself or on one of its dependencies."""
    for sub in dependant.dependencies:
        if sub.call in CREDENTIAL_DEPENDENCIES:
            return sub.call
        if (found := credential_dependency(sub)) is not None:
            return found
    return None


async def authenticate_from_headers(request: Request, dependency: Callable[..., Any]) -> None:
    """Run ``dependency`` on the request's headers alone (401/403 as it answers them) and
    keep its answer for the route. A test may override it (``dependency_overrides``):
    then the override answers, when FastAPI solves the route's dependencies."""
    overrides = request.app.dependency_overrides
    if dependency in overrides:
        return
    settings = overrides.get(get_settings, get_settings)()
    engine = overrides.get(get_engine, get_engine)()
    key, bearer = await _API_KEY(request), await _BEARER(request)
    credentials: dict[Callable[..., Any], dict[str, Any]] = {
        authenticated_game: {"x_api_key": key},
        authenticated_user: {"bearer": bearer},
        authenticated_caller: {"x_api_key": key, "bearer": bearer},
    }
    answer = await dependency(request, settings, engine, **credentials[dependency])
    setattr(request.state, _CHECKED, (dependency, answer))


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def authenticating_first(dependant: Dependant, handler: Handler) -> Handler:
    """``handler`` (a route's, as FastAPI builds it) preceded by the check of the route's
    credential from the headers, so that a request without a valid one is answered 401 or
    403 before its body is received, let alone parsed. Routes without a credential are
    left as they are."""
    dependency = credential_dependency(dependant)
    if dependency is None:
        return handler

    async def authenticated(request: Request) -> Response:
        await authenticate_from_headers(request, dependency)
        return await handler(request)

    return authenticated


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
# Write quotas per game key and app user are the front door's (deploy/nginx/), which answers
# 429 before the API sees the request; documented here so that clients expect it.
QUOTA_ERRORS = error_responses(
    {429: "Over the front door's rate limit of the address, key or user; see Retry-After"}
)
