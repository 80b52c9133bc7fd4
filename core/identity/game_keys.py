"""Games and their API keys: create, rotate, authenticate (see core/identity/credentials.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import Session

from core.events.models import Game
from core.identity.credentials import CachedCredentialLookup, issue_secret
from core.identity.ids import GAME_ID_PATTERN

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
        raise GameExists(f"game {game_id!r} exists")
    key = issue_secret(KEY_PREFIX)
    session.add(
        Game(game_id=game_id, name=name, api_key_hash=key.digest, api_key_prefix=key.prefix)
    )
    session.flush()
    return NewKey(game_id, key.secret)


def rotate_key(session: Session, game_id: str) -> NewKey:
    """A new key for the game; the old one stops working (within the API's cache TTL)."""
    key = issue_secret(KEY_PREFIX)
    result: CursorResult = session.execute(  # type: ignore[assignment]  # an UPDATE
        update(Game)
        .where(Game.game_id == game_id)
        .values(
            api_key_hash=key.digest, api_key_prefix=key.prefix, key_rotated_at=datetime.now(UTC)
        )
    )
    if result.rowcount == 0:
        raise UnknownGame(f"no game {game_id!r}")
    return NewKey(game_id, key.secret)


def list_games(session: Session) -> list[Game]:
    return list(session.scalars(select(Game).order_by(Game.game_id)))


class KeyAuthenticator(CachedCredentialLookup):
    """Resolve an API key to its active game, caching answers for ``ttl`` seconds."""

    def __init__(self, engine: Engine, ttl: float) -> None:
        super().__init__(
            engine, ttl, owner=Game.game_id, digest=Game.api_key_hash, active=Game.is_active
        )

    def game_for(self, api_key: str) -> str | None:
        """The game id of an active key, or None."""
        return self.owner_for(api_key)
