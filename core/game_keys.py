"""Games and their API keys: create, rotate, authenticate. Only a SHA-256 of a key is stored.

Keys are 256-bit random, so a fast unsalted hash is enough (no dictionary to attack) and
lets the API find the game with one indexed lookup; the final comparison is constant-time.
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

from core.events import GAME_ID_PATTERN
from core.models_events import Game

KEY_PREFIX = "sk_live_"
_GAME_ID = re.compile(GAME_ID_PATTERN)


class GameExists(ValueError):
    pass


class UnknownGame(LookupError):
    pass


@dataclass(frozen=True)
class NewKey:
    game_id: str
    api_key: str  # shown once, never stored


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def _new_key() -> tuple[str, str, str]:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_key(key), key[: len(KEY_PREFIX) + 4]


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.strip().lower()).strip("-_")[:64]
    if not _GAME_ID.match(slug):
        raise ValueError(f"cannot make a game id from {name!r}; pass --game-id (a-z, 0-9, _ -)")
    return slug


def create_game(session: Session, name: str, game_id: str | None = None) -> NewKey:
    game_id = game_id or slugify(name)
    if not _GAME_ID.match(game_id):
        raise ValueError(f"game id {game_id!r} must match {GAME_ID_PATTERN}")
    if session.get(Game, game_id) is not None:
        raise GameExists(f"game {game_id!r} exists; use `stride games rotate-key {game_id}`")
    key, digest, prefix = _new_key()
    session.add(Game(game_id=game_id, name=name, api_key_hash=digest, api_key_prefix=prefix))
    session.flush()
    return NewKey(game_id, key)


def rotate_key(session: Session, game_id: str) -> NewKey:
    """A new key for the game; the old one stops working (within the API's cache TTL)."""
    key, digest, prefix = _new_key()
    result = session.execute(
        update(Game)
        .where(Game.game_id == game_id)
        .values(api_key_hash=digest, api_key_prefix=prefix, key_rotated_at=datetime.now(UTC))
    )
    if result.rowcount == 0:
        raise UnknownGame(f"no game {game_id!r}; see `stride games list`")
    return NewKey(game_id, key)


def list_games(session: Session) -> list[Game]:
    return list(session.scalars(select(Game).order_by(Game.game_id)))


class KeyAuthenticator:
    """Resolve an API key to its active game, caching answers for ``ttl`` seconds."""

    def __init__(self, engine: Engine, ttl: float) -> None:
        self._engine = engine
        self._ttl = ttl
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def game_for(self, api_key: str) -> str | None:
        """The game id of an active key, or None."""
        digest = hash_key(api_key)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        with self._engine.connect() as conn:
            row = conn.execute(
                select(Game.game_id, Game.api_key_hash).where(
                    Game.api_key_hash == digest, Game.is_active.is_(True)
                )
            ).first()
        game_id = row.game_id if row and hmac.compare_digest(row.api_key_hash, digest) else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self._ttl, game_id)
        return game_id
