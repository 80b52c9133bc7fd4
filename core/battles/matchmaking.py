"""Matchmaking: players wait in a queue per game and mode; a matcher pass pairs them by
rating with a window that widens with waiting time, and queues their battles.

Tickets are rows of ``match_tickets`` (PostgreSQL is the source of truth, so the queue and
every match survive a restart). A player holds one waiting ticket at a time (a partial
unique index). A pass takes the waiting tickets with ``SELECT … FOR UPDATE SKIP LOCKED``:
concurrent matchers each get a disjoint set, so no ticket is matched twice. Pairing is the
pure :func:`pair`; a ticket waiting longer than the TTL expires. The battle id derives from
the two ticket ids, so a pass that crashed after its commit re-publishes the same battles
(:func:`unpublished`) and the engine resolves each once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, true
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.battles import profiles
from core.battles.contracts import BattleRequest
from core.battles.models import Battle, BattleStatus, MatchTicket, TicketStatus
from core.battles.store import queue_battle
from core.platform.config import BattleSettings
from core.platform.errors import Conflict, NotFound

MATCH_NAMESPACE = uuid.UUID("5a0c2f5e-8d64-4c1b-b8f7-3e2a1d0c9b87")
MAX_TICKETS_PER_PASS = 1000


class AlreadyWaiting(Conflict):
    code = "player_already_waiting"


class TicketNotFound(NotFound):
    code = "ticket_not_found"


@dataclass(frozen=True)
class Waiting:
    ticket_id: uuid.UUID
    player_id: str
    mu: float
    created_at: datetime


@dataclass(frozen=True)
class Window:
    base: float
    widen_per_s: float
    widest: float

    def at(self, waited_s: float) -> float:
        return min(self.base + self.widen_per_s * max(waited_s, 0.0), self.widest)


def window_from_settings(settings: BattleSettings) -> Window:
    return Window(
        settings.battles_match_window,
        settings.battles_match_widen_per_s,
        settings.battles_match_window_max,
    )


def pair(
    tickets: Sequence[Waiting], now: datetime, window: Window
) -> list[tuple[Waiting, Waiting]]:
    """Neighbours by rating are paired when their gap fits the wider of their two windows
    (the longer waiter's); each ticket is in one pair at most. Deterministic."""
    ordered = sorted(tickets, key=lambda t: (t.mu, t.created_at, t.ticket_id))
    pairs = []
    index = 0
    while index + 1 < len(ordered):
        a, b = ordered[index], ordered[index + 1]
        waited = (now - min(a.created_at, b.created_at)).total_seconds()
        if b.mu - a.mu <= window.at(waited):
            pairs.append((a, b))
            index += 2
        else:
            index += 1
    return pairs


@dataclass(frozen=True)
class TicketView:
    ticket_id: uuid.UUID
    game_id: str
    mode: str
    player_id: str
    status: TicketStatus
    battle_id: uuid.UUID | None
    created_at: datetime


def _view(row: MatchTicket) -> TicketView:
    return TicketView(
        row.ticket_id, row.game_id, row.mode, row.player_id, TicketStatus(row.status),
        row.battle_id, row.created_at,
    )  # fmt: skip


def join_queue(
    session: Session, game_id: str, player_id: str, mode: str, *, now: datetime
) -> TicketView:
    """A waiting ticket for the player (their profile is created if new)."""
    try:
        player = profiles.show_player(session, game_id, player_id)
    except profiles.PlayerNotFound:
        player = profiles.create_player(session, game_id, player_id, player_id[:64], now=now)
    if not player.is_active:
        raise profiles.PlayerNotFound(f"player {player_id!r} of game {game_id!r} is deactivated")
    row = MatchTicket(
        ticket_id=uuid.uuid4(),
        game_id=game_id,
        mode=mode,
        player_id=player_id,
        mu=player.mu,
        status=TicketStatus.waiting,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise AlreadyWaiting(
            f"player {player_id!r} already waits for a battle: wait for it or let it expire"
        ) from None
    return _view(row)


def get_ticket(session: Session, game_id: str, ticket_id: uuid.UUID) -> TicketView:
    row = session.get(MatchTicket, ticket_id)
    if row is None or row.game_id != game_id:
        raise TicketNotFound(f"game {game_id!r} has no ticket {ticket_id}")
    return _view(row)


@dataclass(frozen=True)
class PassOutcome:
    matched: int
    expired: int
    battles: list[BattleRequest]


def match_pass(
    engine: Engine, game_id: str, mode: str, settings: BattleSettings, *, now: datetime
) -> PassOutcome:
    """One pass in one transaction: expire stale tickets, pair the waiting ones, queue
    their battles. The caller publishes ``battles`` after it returns (committed)."""
    stale_before = now - timedelta(seconds=settings.battles_ticket_ttl_s)
    window = window_from_settings(settings)
    with Session(engine) as session, session.begin():
        rows = session.scalars(
            select(MatchTicket)
            .where(
                MatchTicket.game_id == game_id,
                MatchTicket.mode == mode,
                MatchTicket.status == TicketStatus.waiting,
            )
            .order_by(MatchTicket.created_at)
            .limit(MAX_TICKETS_PER_PASS)
            .with_for_update(skip_locked=True)
        ).all()
        expired = [r for r in rows if r.created_at < stale_before]
        for row in expired:
            row.status, row.closed_at = TicketStatus.expired, now
        live = {r.ticket_id: r for r in rows if r.created_at >= stale_before}
        waiting = [Waiting(r.ticket_id, r.player_id, r.mu, r.created_at) for r in live.values()]
        battles = []
        for a, b in pair(waiting, now, window):
            battle_id = uuid.uuid5(MATCH_NAMESPACE, f"{a.ticket_id}/{b.ticket_id}")
            request = BattleRequest(
                battle_id=battle_id,
                game_id=game_id,
                mode=mode,
                sides=[[a.player_id], [b.player_id]],
                requested_at=now,
            )
            queue_battle(session, request, None)
            for ticket in (a, b):
                row = live[ticket.ticket_id]
                row.status, row.battle_id, row.closed_at = TicketStatus.matched, battle_id, now
            battles.append(request)
    return PassOutcome(2 * len(battles), len(expired), battles)


def unpublished(engine: Engine, game_id: str | None, older_than: datetime) -> list[BattleRequest]:
    """Matched battles (of ``game_id``, or of every game) still queued since before
    ``older_than``: a pass that crashed between its commit and its publish left them;
    publishing them again is safe (same battle ids)."""
    with Session(engine) as session:
        rows = session.scalars(
            select(Battle)
            .where(
                Battle.game_id == game_id if game_id is not None else true(),
                Battle.status == BattleStatus.queued,
                Battle.requested_at < older_than,
                Battle.battle_id.in_(
                    select(MatchTicket.battle_id).where(MatchTicket.status == TicketStatus.matched)
                ),
            )
            .limit(MAX_TICKETS_PER_PASS)
        ).all()
        return [
            BattleRequest(
                battle_id=r.battle_id,
                game_id=r.game_id,
                mode=r.mode,
                sides=r.sides,
                requested_at=r.requested_at,
            )
            for r in rows
        ]


def waiting_queues(engine: Engine) -> list[tuple[str, str]]:
    """Every (game, mode) with a waiting ticket: the queues a matcher of all games serves."""
    with Session(engine) as session:
        rows = session.execute(
            select(MatchTicket.game_id, MatchTicket.mode)
            .where(MatchTicket.status == TicketStatus.waiting)
            .distinct()
            .order_by(MatchTicket.game_id, MatchTicket.mode)
        ).all()
    return [(game_id, mode) for game_id, mode in rows]
