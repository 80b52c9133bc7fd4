"""Player profiles of battles: create, show, rename, deactivate, with rating and record.

A profile is a game's player as battles know it; when the player is linked to an app user
(``core.identity.players``) the profile shows that user. A deactivated player's battles are
rejected; the profile and its history stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.battles import ratings
from core.battles.models import Player
from core.identity.models import PlayerLink
from core.platform.errors import Conflict, NotFound


class PlayerNotFound(NotFound):
    code = "player_not_found"


class PlayerExists(Conflict):
    code = "player_exists"


@dataclass(frozen=True)
class PlayerProfile:
    game_id: str
    player_id: str
    display_name: str
    is_active: bool
    mu: float
    sigma: float
    ordinal: float
    battles: int
    wins: int
    losses: int
    user_id: str | None  # the app user the player is linked to, if any
    created_at: datetime
    updated_at: datetime


def _profile(row: Player, user_id: str | None) -> PlayerProfile:
    return PlayerProfile(
        game_id=row.game_id,
        player_id=row.player_id,
        display_name=row.display_name,
        is_active=row.is_active,
        mu=row.mu,
        sigma=row.sigma,
        ordinal=ratings.Rating(row.mu, row.sigma).ordinal,
        battles=row.battles,
        wins=row.wins,
        losses=row.losses,
        user_id=user_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _linked_user(session: Session, game_id: str, player_id: str) -> str | None:
    return session.scalar(
        select(PlayerLink.user_id).where(
            PlayerLink.game_id == game_id, PlayerLink.player_id == player_id
        )
    )


def _row(session: Session, game_id: str, player_id: str, *, lock: bool = False) -> Player:
    query = select(Player).where(Player.game_id == game_id, Player.player_id == player_id)
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise PlayerNotFound(f"game {game_id!r} has no player {player_id!r}")
    return row


def create_player(
    session: Session, game_id: str, player_id: str, display_name: str, *, now: datetime
) -> PlayerProfile:
    first = ratings.initial()
    inserted = session.execute(
        insert(Player)
        .values(
            game_id=game_id,
            player_id=player_id,
            display_name=display_name,
            mu=first.mu,
            sigma=first.sigma,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["game_id", "player_id"])
        .returning(Player.player_id)
    ).first()
    if inserted is None:
        raise PlayerExists(f"game {game_id!r} already has a player {player_id!r}")
    return show_player(session, game_id, player_id)


def show_player(session: Session, game_id: str, player_id: str) -> PlayerProfile:
    row = _row(session, game_id, player_id)
    return _profile(row, _linked_user(session, game_id, player_id))


def rename_player(
    session: Session, game_id: str, player_id: str, display_name: str, *, now: datetime
) -> PlayerProfile:
    row = _row(session, game_id, player_id, lock=True)
    row.display_name = display_name
    row.updated_at = now
    session.flush()
    return _profile(row, _linked_user(session, game_id, player_id))


def deactivate_player(
    session: Session, game_id: str, player_id: str, *, now: datetime
) -> PlayerProfile:
    """Idempotent: deactivating an inactive player changes nothing."""
    row = _row(session, game_id, player_id, lock=True)
    if row.is_active:
        row.is_active = False
        row.updated_at = now
        session.flush()
    return _profile(row, _linked_user(session, game_id, player_id))
