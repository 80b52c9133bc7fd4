"""Machine credentials (game API keys, app user tokens): issue, hash, look up with a cache.

Credentials are 256-bit random strings shown once; only their SHA-256 is stored. With no
dictionary to attack, a fast unsalted hash is enough and lets one indexed lookup find the
owner; the final comparison is constant-time. Lookups are cached per process for ``ttl``
seconds, so a rotated or revoked credential stops working within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from dataclasses import dataclass

from cachetools import LRUCache, TTLCache
from sqlalchemy import ColumnElement, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import InstrumentedAttribute

from core.platform.errors import Unavailable

log = logging.getLogger(__name__)

MAX_CACHED = 10_000


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedSecret:
    secret: str  # shown once, never stored
    digest: str
    prefix: str  # the first characters, kept to recognise a key in listings


def issue_secret(marker: str) -> IssuedSecret:
    """A new random credential that starts with ``marker`` (e.g. ``sk_live_``)."""
    secret = marker + secrets.token_urlsafe(32)
    return IssuedSecret(secret, hash_secret(secret), secret[: len(marker) + 4])


class CachedCredentialLookup:
    """Resolve a credential to the id of its active owner, caching answers for ``ttl`` s.

    While the database is down, a credential answered before keeps its last answer (so
    ingest goes on for the games already seen, as long as Kafka is up); an unknown one
    raises :class:`~core.platform.errors.Unavailable`."""

    def __init__(
        self,
        engine: Engine,
        ttl: float,
        *,
        owner: InstrumentedAttribute,
        digest: InstrumentedAttribute,
        active: ColumnElement[bool] | InstrumentedAttribute[bool],
    ) -> None:
        self._engine = engine
        self._owner = owner
        self._digest = digest
        self._active = active
        self._ttl = ttl
        self._fresh: TTLCache[str, str | None] = TTLCache(MAX_CACHED, ttl=max(ttl, 1e-9))
        self._known: LRUCache[str, str | None] = LRUCache(MAX_CACHED)
        self._lock = threading.Lock()

    def cached_owner(self, secret: str) -> tuple[bool, str | None]:
        """``(True, owner id or None)`` when the answer is cached and fresh, else
        ``(False, None)``: never touches the database, so an event loop may call it."""
        digest = hash_secret(secret)
        with self._lock:
            if digest in self._fresh:
                return True, self._fresh[digest]
        return False, None

    def owner_for(self, secret: str) -> str | None:
        """The owner id of an active credential, or None."""
        digest = hash_secret(secret)
        with self._lock:
            if digest in self._fresh:
                return self._fresh[digest]
        try:
            with self._engine.connect() as conn:
                row = conn.execute(
                    select(self._owner, self._digest).where(self._digest == digest, self._active)
                ).first()
        except DBAPIError as exc:
            with self._lock:
                if digest in self._known:
                    log.warning("database unavailable (%s); using the last answer", exc.orig)
                    return self._known[digest]
            raise Unavailable(
                "the database is unavailable, so this credential cannot be checked; "
                "retry after a few seconds"
            ) from exc
        owner = row[0] if row and hmac.compare_digest(row[1], digest) else None
        with self._lock:
            if self._ttl > 0:
                self._fresh[digest] = owner
            self._known[digest] = owner
        return owner
