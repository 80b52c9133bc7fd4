"""App users and their bearer tokens: create, rotate, deactivate, authenticate.

Tokens are issued, hashed and looked up as described in core/identity/credentials.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.identity.credentials import CachedCredentialLookup, issue_secret
from core.identity.ids import USER_ID_PATTERN
from core.identity.models import AppUser

TOKEN_PREFIX = "su_"  # noqa: S105 - marks Stride user tokens, not a secret
_USER_ID = re.compile(USER_ID_PATTERN)


class AppUserExists(ValueError):
    pass


class UnknownAppUser(LookupError):
    pass


@dataclass(frozen=True)
class NewToken:
    user_id: str
    token: str  # shown once, never stored


def create_app_user(session: Session, user_id: str) -> NewToken:
    if not _USER_ID.match(user_id):
        raise ValueError(f"user id {user_id!r} must be 1-128 letters, digits or _ . : @ -")
    if session.get(AppUser, user_id) is not None:
        raise AppUserExists(f"app user {user_id!r} exists")
    token = issue_secret(TOKEN_PREFIX)
    session.add(AppUser(user_id=user_id, token_hash=token.digest, token_prefix=token.prefix))
    session.flush()
    return NewToken(user_id, token.secret)


def rotate_token(session: Session, user_id: str) -> NewToken:
    """A new token for the user (reactivating them); the old token stops working."""
    token = issue_secret(TOKEN_PREFIX)
    result = session.execute(
        update(AppUser)
        .where(AppUser.user_id == user_id)
        .values(
            token_hash=token.digest,
            token_prefix=token.prefix,
            is_active=True,
            token_rotated_at=datetime.now(UTC),
        )
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise UnknownAppUser(f"no app user {user_id!r}")
    return NewToken(user_id, token.secret)


def deactivate(session: Session, user_id: str) -> None:
    result = session.execute(
        update(AppUser).where(AppUser.user_id == user_id).values(is_active=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise UnknownAppUser(f"no app user {user_id!r}")


class TokenAuthenticator(CachedCredentialLookup):
    """Resolve a bearer token to its active user, caching answers for ``ttl`` seconds."""

    def __init__(self, engine: Engine, ttl: float) -> None:
        super().__init__(
            engine, ttl, owner=AppUser.user_id, digest=AppUser.token_hash, active=AppUser.is_active
        )

    def user_for(self, token: str) -> str | None:
        """The user id of an active token, or None."""
        return self.owner_for(token)
