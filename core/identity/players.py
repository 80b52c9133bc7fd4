"""Players belong to people: a game's player linked to an app user, with both sides' consent.

The app user asks for a short-lived single-use link code for one game; the game server
redeems it with its own key for one of its players. Neither side alone can link: the code
proves the user, the key proves the game. A player links to one user at most; a user may
have players in many games. Only a SHA-256 of each code is stored. The chain writer finds
the wallet that earns a player's rewards with :func:`primary_wallet_for_player`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.events.models import Game
from core.identity.models import LinkAuditLog, PlayerLink, PlayerLinkCode, UserWallet
from core.identity.wallets import lock_user
from core.platform.errors import Conflict, Forbidden, Invalid, NotFound

# Crockford's base32 (no I, L, O, U): easy to read out and type; 10 characters = 50 bits.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10


class UnknownGame(NotFound):
    code = "game_not_found"


class LinkCodeUnknown(NotFound):
    code = "link_code_unknown"


class LinkCodeExpired(Invalid):
    code = "link_code_expired"


class LinkCodeUsed(Conflict):
    code = "link_code_used"


class LinkCodeWrongGame(Forbidden):
    code = "link_code_wrong_game"


class PlayerTaken(Conflict):
    code = "player_linked_to_another_user"


class UnknownPlayerLink(NotFound):
    code = "player_link_not_found"


@dataclass(frozen=True)
class IssuedLinkCode:
    code: str  # shown once, never stored
    game_id: str
    expires_at: datetime


@dataclass(frozen=True)
class PlayerLinkView:
    game_id: str
    player_id: str
    user_id: str
    linked_at: datetime


def _view(row: PlayerLink) -> PlayerLinkView:
    return PlayerLinkView(row.game_id, row.player_id, row.user_id, row.linked_at)


def normalize_code(code: str) -> str:
    """The code as issued: case, spaces and dashes do not matter (``abcde-12345``)."""
    return code.replace("-", "").replace(" ", "").upper()


def _hash(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def display_code(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def issue_link_code(
    session: Session, user_id: str, game_id: str, *, ttl: timedelta, keep: int, now: datetime
) -> IssuedLinkCode:
    """A new code for ``user_id`` to give to ``game_id``'s server; the user keeps at most
    ``keep`` unused codes (the oldest go first). Used ones are kept until they expire, so a
    second redemption is told the code was used."""
    lock_user(session, user_id)
    game = session.get(Game, game_id)
    if game is None or not game.is_active:
        raise UnknownGame(f"no active game {game_id!r}")
    session.execute(
        delete(PlayerLinkCode).where(
            PlayerLinkCode.user_id == user_id, PlayerLinkCode.expires_at <= now
        )
    )
    unused = (PlayerLinkCode.user_id == user_id, PlayerLinkCode.used_at.is_(None))
    kept = (
        select(PlayerLinkCode.code_hash)
        .where(*unused)
        .order_by(PlayerLinkCode.created_at.desc(), PlayerLinkCode.code_hash)
        .limit(keep - 1)
    )
    session.execute(delete(PlayerLinkCode).where(*unused, PlayerLinkCode.code_hash.not_in(kept)))
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    expires_at = now + ttl
    session.add(
        PlayerLinkCode(
            code_hash=_hash(code),
            user_id=user_id,
            game_id=game_id,
            created_at=now,
            expires_at=expires_at,
        )
    )
    session.flush()
    return IssuedLinkCode(display_code(code), game_id, expires_at)


def redeem_link_code(
    session: Session, game_id: str, code: str, player_id: str, *, now: datetime
) -> tuple[PlayerLinkView, bool]:
    """Link ``game_id``'s ``player_id`` to the user who issued ``code``. Returns the link and
    whether it is new (redeeming for a player already linked to that user is a no-op that
    still uses the code)."""
    row = session.execute(
        select(PlayerLinkCode).where(PlayerLinkCode.code_hash == _hash(code)).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise LinkCodeUnknown("no such link code: ask the player to get a new one in the app")
    if row.game_id != game_id:
        raise LinkCodeWrongGame(
            f"this link code is not for game {game_id!r}: the player asked for it for another game"
        )
    if row.used_at is not None:
        raise LinkCodeUsed("this link code was already used: each link needs a new code")
    if row.expires_at <= now:
        raise LinkCodeExpired(
            f"this link code expired at {row.expires_at.isoformat()}: ask the player for a new one"
        )
    user_id = row.user_id
    lock_user(session, user_id)
    inserted = session.execute(
        insert(PlayerLink)
        .values(game_id=game_id, player_id=player_id, user_id=user_id, linked_at=now)
        .on_conflict_do_nothing(index_elements=["game_id", "player_id"])
        .returning(PlayerLink.player_id)
    ).first()
    link = session.execute(
        select(PlayerLink)
        .where(PlayerLink.game_id == game_id, PlayerLink.player_id == player_id)
        .execution_options(populate_existing=True)
    ).scalar_one()
    if link.user_id != user_id:
        raise PlayerTaken(
            f"player {player_id!r} of game {game_id!r} is linked to another user; that user "
            "must unlink it first"
        )
    row.used_at = now
    if inserted is not None:
        session.add(
            LinkAuditLog(
                user_id=user_id,
                action="player_linked",
                subject=f"{game_id}/{player_id}",
                detail={"game_id": game_id, "player_id": player_id},
            )
        )
    session.flush()
    return _view(link), inserted is not None


def players_of_user(session: Session, user_id: str) -> list[PlayerLinkView]:
    rows = session.scalars(
        select(PlayerLink)
        .where(PlayerLink.user_id == user_id)
        .order_by(PlayerLink.game_id, PlayerLink.player_id)
    )
    return [_view(row) for row in rows]


def unlink_player(session: Session, user_id: str, game_id: str, player_id: str) -> None:
    """The user withdraws their consent: the player is no longer theirs (audited)."""
    lock_user(session, user_id)
    deleted = session.execute(
        delete(PlayerLink)
        .where(
            PlayerLink.game_id == game_id,
            PlayerLink.player_id == player_id,
            PlayerLink.user_id == user_id,
        )
        .returning(PlayerLink.player_id)
    ).first()
    if deleted is None:
        raise UnknownPlayerLink(f"player {player_id!r} of game {game_id!r} is not linked to you")
    session.add(
        LinkAuditLog(
            user_id=user_id,
            action="player_unlinked",
            subject=f"{game_id}/{player_id}",
            detail={"game_id": game_id, "player_id": player_id},
        )
    )


def player_link(session: Session, game_id: str, player_id: str) -> PlayerLinkView:
    """The link of a game's player to its app user; :class:`UnknownPlayerLink` when none."""
    row = session.get(PlayerLink, (game_id, player_id))
    if row is None:
        raise UnknownPlayerLink(f"player {player_id!r} of game {game_id!r} is not linked")
    return _view(row)


def primary_wallet_for_player(session: Session, game_id: str, player_id: str) -> str | None:
    """Where a player's rewards go: player → app user → primary wallet (EIP-55), or None
    when the player is not linked or their user has no wallet."""
    return session.scalar(
        select(UserWallet.address)
        .join(PlayerLink, PlayerLink.user_id == UserWallet.user_id)
        .where(
            PlayerLink.game_id == game_id,
            PlayerLink.player_id == player_id,
            UserWallet.is_primary,
        )
    )
