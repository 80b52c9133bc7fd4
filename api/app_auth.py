"""Bearer-token authentication of app users: ``Authorization: Bearer <token>``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from api.deps import credential_owner, per_app
from core.identity.app_users import TokenAuthenticator
from core.platform.config import get_settings
from core.platform.db import get_engine


def _authenticator(request: Request) -> TokenAuthenticator:
    return per_app(
        request,
        "app_token_authenticator",
        lambda: TokenAuthenticator(get_engine(), get_settings().app_token_cache_ttl_s),
    )


async def authenticated_user(
    request: Request,
    authorization: Annotated[
        str | None,
        Header(description="`Bearer <token>` of the app user (`stride users create`)"),
    ] = None,
) -> str:
    """The user id of the request's bearer token: 401 when missing, 403 when not valid."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            401,
            "missing or malformed Authorization header: send 'Authorization: Bearer <token>' "
            "with the app user's token (create one with `stride users create USER_ID`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user_id = await credential_owner(_authenticator(request), token.strip())
    if user_id is None:
        raise HTTPException(403, "the bearer token is not the token of any active app user")
    return user_id


AppUserDep = Annotated[str, Depends(authenticated_user)]
