"""App users and their bearer tokens: create, rotate, deactivate, authenticate.

Tokens are 256-bit random strings shown once; only their SHA-256 is stored (no dictionary
to attack, so a fast hash suffices and one indexed lookup finds the user). Answers are
cached for a few seconds per API process, so a revoked token stops working within the TTL.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.wearables.contracts import USER_ID_PATTERN
from core.wearables.models import AppUser

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


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> tuple[str, str, str]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token), token[: len(TOKEN_PREFIX) + 4]


def create_app_user(session: Session, user_id: str) -> NewToken:
    if not _USER_ID.match(user_id):
        raise ValueError(f"user id {user_id!r} must be 1-128 letters, digits or _ . : @ -")
    if session.get(AppUser, user_id) is not None:
        raise AppUserExists(f"app user {user_id!r} exists; use `stride users rotate-token`")
    token, digest, prefix = _new_token()
    session.add(AppUser(user_id=user_id, token_hash=digest, token_prefix=prefix))
    session.flush()
    return NewToken(user_id, token)


def rotate_token(session: Session, user_id: str) -> NewToken:
    """A new token for the user (reactivating them); the old token stops working."""
    token, digest, prefix = _new_token()
    result = session.execute(
        update(AppUser)
        .where(AppUser.user_id == user_id)
        .values(
            token_hash=digest,
            token_prefix=prefix,
            is_active=True,
            token_rotated_at=datetime.now(UTC),
        )
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise UnknownAppUser(f"no app user {user_id!r}; create one with `stride users create`")
    return NewToken(user_id, token)


def deactivate(session: Session, user_id: str) -> None:
    result = session.execute(
        update(AppUser).where(AppUser.user_id == user_id).values(is_active=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise UnknownAppUser(f"no app user {user_id!r}")


class TokenAuthenticator:
    """Resolve a bearer token to its active user, caching answers for ``ttl`` seconds."""

    def __init__(self, engine: Engine, ttl: float) -> None:
        self._engine = engine
        self._ttl = ttl
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def user_for(self, token: str) -> str | None:
        """The user id of an active token, or None."""
        digest = hash_token(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        with self._engine.connect() as conn:
            row = conn.execute(
                select(AppUser.user_id, AppUser.token_hash).where(
                    AppUser.token_hash == digest, AppUser.is_active.is_(True)
                )
            ).first()
        user_id = row.user_id if row and hmac.compare_digest(row.token_hash, digest) else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self._ttl, user_id)
        return user_id
