"""Battles in PostgreSQL: queued by the API, resolved and rated by the engine agent.

:func:`resolve_batch` is the engine agent's one transaction per batch: each queued battle is
resolved by :func:`core.battles.engine.resolve` with its players' current ratings, the
ratings are updated (:mod:`core.battles.ratings`), one ``rating_history`` row per player is
written and the battle is marked resolved, all in the same commit. A battle that is not
``queued`` any more (a replay, a duplicate) changes nothing; its ``match_result`` events are
derived again from the stored result, with the same event ids, so a crash between commit and
publish loses none and the scoring agent counts each once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.battles import engine as battle_engine
from core.battles import ratings
from core.battles.contracts import BattleRequest
from core.battles.models import Battle, BattleStatus, Player, RatingChange
from core.events.contracts import GameEvent, MatchOutcome, MatchResult
from core.platform.errors import Conflict, NotFound

# match_result event ids derive from (battle id, player id) in this namespace (uuid5).
EVENT_ID_NAMESPACE = uuid.UUID("7d3f9a52-2c1b-4e4f-8f0a-5b6c7d8e9f10")


class BattleNotFound(NotFound):
    code = "battle_not_found"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class BattleView:
    battle_id: uuid.UUID
    game_id: str
    mode: str
    sides: list[list[str]]
    status: BattleStatus
    reason: str | None
    ranks: list[int] | None
    win_probabilities: list[float] | None
    seed: int | None
    engine_version: int | None
    requested_at: datetime
    resolved_at: datetime | None
    rating_changes: list[RatingChangeView] = field(default_factory=list)


@dataclass(frozen=True)
class RatingChangeView:
    player_id: str
    rank: int
    mu_before: float
    sigma_before: float
    mu_after: float
    sigma_after: float


def _view(row: Battle, changes: Sequence[RatingChange] = ()) -> BattleView:
    result = row.result or {}
    return BattleView(
        battle_id=row.battle_id,
        game_id=row.game_id,
        mode=row.mode,
        sides=row.sides,
        status=BattleStatus(row.status),
        reason=row.reason,
        ranks=result.get("ranks"),
        win_probabilities=result.get("win_probabilities"),
        seed=row.seed,
        engine_version=row.engine_version,
        requested_at=row.requested_at,
        resolved_at=row.resolved_at,
        rating_changes=[
            RatingChangeView(
                c.player_id, c.rank, c.mu_before, c.sigma_before, c.mu_after, c.sigma_after
            )
            for c in changes
        ],
    )


def queue_battle(
    session: Session, request: BattleRequest, idempotency_key: str | None
) -> tuple[BattleView, bool]:
    """Record ``request`` as queued; returns it and whether it is new. A battle id already
    queued with other sides or mode (an idempotency key reused) is a :class:`Conflict`."""
    inserted = session.execute(
        insert(Battle)
        .values(
            battle_id=request.battle_id,
            game_id=request.game_id,
            mode=request.mode,
            sides=request.sides,
            idempotency_key=idempotency_key,
            status=BattleStatus.queued,
            requested_at=request.requested_at,
        )
        .on_conflict_do_nothing()
        .returning(Battle.battle_id)
    ).first()
    row = session.get(Battle, request.battle_id)
    if row is None or row.game_id != request.game_id:
        raise IdempotencyKeyReused("this battle id belongs to another game")
    if inserted is None and (row.mode != request.mode or row.sides != request.sides):
        raise IdempotencyKeyReused(
            f"idempotency key {idempotency_key!r} was used for another battle (other sides or "
            "mode): use a new key for a new battle"
        )
    return _view(row), inserted is not None


def withdraw_unpublished(session: Session, battle_id: uuid.UUID) -> bool:
    """Forget a battle the API queued but could not publish, while it is still queued: its
    client got a 503 and, without an idempotency key, retries under a new battle id, so the
    row would otherwise stay ``queued`` for ever. (Had the broker taken the message after
    all, the engine records the battle again from it: it queues unknown battles first.)"""
    deleted = session.execute(
        delete(Battle)
        .where(Battle.battle_id == battle_id, Battle.status == BattleStatus.queued)
        .returning(Battle.battle_id)
    ).first()
    return deleted is not None


def get_battle(session: Session, game_id: str, battle_id: uuid.UUID) -> BattleView:
    row = session.get(Battle, battle_id)
    if row is None or row.game_id != game_id:
        raise BattleNotFound(f"game {game_id!r} has no battle {battle_id}")
    changes = session.scalars(
        select(RatingChange)
        .where(RatingChange.battle_id == battle_id)
        .order_by(RatingChange.player_id)
    ).all()
    return _view(row, changes)


@dataclass(frozen=True)
class BatchOutcome:
    resolved: int
    rejected: int
    duplicates: int
    events: list[GameEvent]


def match_events(row: Battle) -> list[GameEvent]:
    """The ``match_result`` game events of a resolved battle, one per player, with ids
    derived from the battle and player ids (a replay derives the same ones)."""
    ranks: list[int] = (row.result or {})["ranks"]
    resolved_at = row.resolved_at or row.requested_at
    best_of_others = sorted(range(len(ranks)), key=lambda i: ranks[i])
    events = []
    for index, side in enumerate(row.sides):
        rank = ranks[index]
        opponent_side = next(i for i in best_of_others if i != index)
        outcome = MatchOutcome.win if rank == 1 else MatchOutcome.loss
        for player in side:
            events.append(
                GameEvent(
                    event_id=uuid.uuid5(EVENT_ID_NAMESPACE, f"{row.battle_id}/{player}"),
                    game_id=row.game_id,
                    player_id=player,
                    type="match_result",
                    payload=MatchResult(
                        outcome=outcome,
                        score=battle_engine.score_of(rank, len(ranks)),
                        opponent=row.sides[opponent_side][0],
                        match_id=str(row.battle_id),
                    ),
                    occurred_at=resolved_at,
                    received_at=resolved_at,
                )
            )
    return events


def _lock_players(
    session: Session, battles: Sequence[Battle], now: datetime
) -> dict[tuple[str, str], Player]:
    """Every player of the batch's battles, created on a first battle, locked in key order
    (two workers locking the same players never deadlock)."""
    keys = sorted({(b.game_id, p) for b in battles for side in b.sides for p in side})
    first = ratings.initial()
    session.execute(
        insert(Player)
        .values(
            [
                {
                    "game_id": game_id,
                    "player_id": player_id,
                    "display_name": player_id[:64],
                    "mu": first.mu,
                    "sigma": first.sigma,
                    "created_at": now,
                    "updated_at": now,
                }
                for game_id, player_id in keys
            ]
        )
        .on_conflict_do_nothing(index_elements=["game_id", "player_id"])
    )
    rows = session.scalars(
        select(Player)
        .where(tuple_(Player.game_id, Player.player_id).in_(keys))
        .order_by(Player.game_id, Player.player_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return {(row.game_id, row.player_id): row for row in rows}


def _battle_rows(session: Session, requests: Sequence[BattleRequest]) -> dict[uuid.UUID, Battle]:
    """The batch's battles, locked; one the API did not queue (a producer that bypassed it)
    is queued here first."""
    session.execute(
        insert(Battle)
        .values(
            [
                {
                    "battle_id": r.battle_id,
                    "game_id": r.game_id,
                    "mode": r.mode,
                    "sides": r.sides,
                    "status": BattleStatus.queued,
                    "requested_at": r.requested_at,
                }
                for r in requests
            ]
        )
        .on_conflict_do_nothing()
    )
    rows = session.scalars(
        select(Battle)
        .where(Battle.battle_id.in_([r.battle_id for r in requests]))
        .order_by(Battle.battle_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return {row.battle_id: row for row in rows}


def _resolve_one(
    session: Session, row: Battle, players: dict[tuple[str, str], Player], now: datetime
) -> bool:
    """Resolve and rate one queued battle; False when it is rejected (with the reason)."""
    sides = [[players[(row.game_id, p)] for p in side] for side in row.sides]
    inactive = [p.player_id for side in sides for p in side if not p.is_active]
    if inactive:
        row.status = BattleStatus.rejected
        row.reason = f"deactivated players cannot battle: {', '.join(inactive)}"
        row.resolved_at = now
        return False
    seed = battle_engine.seed_of(row.battle_id)
    result = battle_engine.resolve([[(p.player_id, p.mu) for p in side] for side in sides], seed)
    before = [[ratings.Rating(p.mu, p.sigma) for p in side] for side in sides]
    after = ratings.rate(before, result.ranks)
    for side, old_side, new_side, rank in zip(sides, before, after, result.ranks, strict=True):
        for player, old, new in zip(side, old_side, new_side, strict=True):
            session.add(
                RatingChange(
                    battle_id=row.battle_id,
                    player_id=player.player_id,
                    game_id=row.game_id,
                    rank=rank,
                    mu_before=old.mu,
                    sigma_before=old.sigma,
                    mu_after=new.mu,
                    sigma_after=new.sigma,
                    rated_at=now,
                )
            )
            player.mu, player.sigma = new.mu, new.sigma
            player.battles += 1
            if rank == 1:
                player.wins += 1
            else:
                player.losses += 1
            player.updated_at = now
    result_json: dict[str, Any] = {
        "ranks": list(result.ranks),
        "win_probabilities": list(result.win_probabilities),
    }
    row.status = BattleStatus.resolved
    row.result = result_json
    row.seed = result.seed
    row.engine_version = result.engine_version
    row.resolved_at = now
    return True


def resolve_batch(engine: Engine, requests: Sequence[BattleRequest], now: datetime) -> BatchOutcome:
    """The engine agent's batch in ONE transaction (module docstring)."""
    if not requests:
        return BatchOutcome(0, 0, 0, [])
    resolved = rejected = duplicates = 0
    events: list[GameEvent] = []
    seen: set[uuid.UUID] = set()
    with Session(engine) as session, session.begin():
        battles = _battle_rows(session, requests)
        queued = [b for b in battles.values() if b.status == BattleStatus.queued]
        players = _lock_players(session, queued, now) if queued else {}
        for request in requests:
            row = battles[request.battle_id]  # the stored battle is the one resolved
            if request.battle_id in seen or row.status != BattleStatus.queued:
                duplicates += 1
            elif _resolve_one(session, row, players, now):
                resolved += 1
            else:
                rejected += 1
            if request.battle_id not in seen and row.status == BattleStatus.resolved:
                events.extend(match_events(row))
            seen.add(request.battle_id)
    return BatchOutcome(resolved, rejected, duplicates, events)
