"""Battles in PostgreSQL: queued by the API, resolved and rated by the engine agent.

:func:`resolve_batch` is the engine agent's one transaction per batch: each queued battle is
resolved by :func:`core.battles.engine.resolve` with its players' current ratings and the
power of the items they own (stored with the result), the ratings are updated
(:mod:`core.battles.ratings`), one ``rating_history`` row per player is written and the
battle is marked resolved, all in the same commit, with one set-based statement per table.
A battle that is not ``queued`` any more (a replay, a duplicate) changes nothing; its
``match_result`` events are derived again from the stored result, with the same event ids,
so a crash between commit and publish loses none and the scoring agent counts each once.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection, delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.battles import engine as battle_engine
from core.battles import ratings
from core.battles.contracts import BattleRequest
from core.battles.models import Battle, BattleStatus, RatingChange
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
    items: dict[str, list[list[Any]]] | None
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
        items=result.get("items"),
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


@dataclass(frozen=True)
class QueuedBattle:
    battle_id: uuid.UUID
    status: BattleStatus
    created: bool


_QUEUE_MANY = text(
    "INSERT INTO battles (battle_id, game_id, mode, sides, idempotency_key, status,"
    " requested_at)"
    " SELECT b.id, b.game, b.mode, CAST(b.sides AS jsonb), b.key, 'queued', b.at"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:games AS text[]), CAST(:modes AS text[]),"
    " CAST(:sides AS text[]), CAST(:keys AS text[]), CAST(:at AS timestamptz[]))"
    " AS b(id, game, mode, sides, key, at)"
    " ON CONFLICT DO NOTHING RETURNING battle_id"
)
_STORED = text(
    "SELECT battle_id, game_id, mode, sides, status FROM battles"
    " WHERE battle_id = ANY(CAST(:ids AS uuid[]))"
)


def queue_battles(
    session: Session, items: Sequence[tuple[BattleRequest, str | None]]
) -> list[QueuedBattle | IdempotencyKeyReused]:
    """:func:`queue_battle` for many battles with two statements: per item, in order, the
    queued battle and whether it is new, or the refusal of a reused idempotency key (an item
    repeating an earlier item's key in the same call is that battle, not new)."""
    if not items:
        return []
    created = set(
        session.scalars(
            _QUEUE_MANY,
            {
                "ids": [r.battle_id for r, _k in items],
                "games": [r.game_id for r, _k in items],
                "modes": [r.mode for r, _k in items],
                "sides": [json.dumps(r.sides) for r, _k in items],
                "keys": [k for _r, k in items],
                "at": [r.requested_at for r, _k in items],
            },
        )
    )
    stored = {
        row.battle_id: row
        for row in session.execute(_STORED, {"ids": list({r.battle_id for r, _k in items})})
    }
    answers: list[QueuedBattle | IdempotencyKeyReused] = []
    first_seen: set[uuid.UUID] = set()
    for request, key in items:
        row = stored.get(request.battle_id)
        new = request.battle_id in created and request.battle_id not in first_seen
        first_seen.add(request.battle_id)
        if row is None or row.game_id != request.game_id:
            answers.append(IdempotencyKeyReused("this battle id belongs to another game"))
        elif not new and (row.mode != request.mode or row.sides != request.sides):
            answers.append(
                IdempotencyKeyReused(
                    f"idempotency key {key!r} was used for another battle (other sides or "
                    "mode): use a new key for a new battle"
                )
            )
        else:
            answers.append(QueuedBattle(request.battle_id, BattleStatus(row.status), new))
    return answers


def withdraw_unpublished_many(session: Session, battle_ids: Sequence[uuid.UUID]) -> int:
    """:func:`withdraw_unpublished` for each of ``battle_ids`` in one statement; how many
    were withdrawn (those still queued)."""
    if not battle_ids:
        return 0
    deleted = session.execute(
        delete(Battle)
        .where(Battle.battle_id.in_(list(battle_ids)), Battle.status == BattleStatus.queued)
        .returning(Battle.battle_id)
    ).all()
    return len(deleted)


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
    # the match_result events of the batch's resolved battles, as (key, JSON value) records
    # for game.events.v1 (match_event_records)
    events: list[tuple[bytes, bytes]]


@dataclass
class StoredBattle:
    """The columns of a locked ``battles`` row the engine batch reads and writes."""

    battle_id: uuid.UUID
    game_id: str
    sides: list[list[str]]
    status: BattleStatus
    result: dict[str, Any] | None
    requested_at: datetime
    resolved_at: datetime | None


@dataclass
class _Rated:
    """A locked player's rating and record while the batch resolves (written back once),
    and the items they own that give power (read once per batch)."""

    is_active: bool
    mu: float
    sigma: float
    battles: int
    wins: int
    losses: int
    changed: bool = False
    items: list[battle_engine.OwnedItem] = field(default_factory=list)


_EVENT_ID_PREFIX = EVENT_ID_NAMESPACE.bytes
_TIMES = TypeAdapter(datetime)


def _event_id(battle_id: str, player: str) -> str:
    """``str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{battle_id}/{player}"))`` without the two
    ``UUID`` objects (a test holds them equal)."""
    name = _EVENT_ID_PREFIX + f"{battle_id}/{player}".encode()
    digest = bytearray(hashlib.sha1(name, usedforsecurity=False).digest())  # uuid5 is sha1
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def match_event_records(
    row: StoredBattle, times: dict[datetime, str] | None = None
) -> list[tuple[bytes, bytes]]:
    """:func:`match_events` as the records the agent publishes to ``game.events.v1``
    (key: the player id, value: the event's JSON), byte for byte what
    ``GameEvent.model_dump_json`` gives for them (a test holds them equal), built without the
    pydantic models (~27 us of CPU per event, a tenth of the engine's per battle). The ids
    are the contracts' (checked when the battle was queued); the strings are JSON-escaped
    anyway. ``times`` caches the JSON of a batch's resolution time."""
    ranks: list[int] = (row.result or {})["ranks"]
    resolved_at = row.resolved_at or row.requested_at
    cache = times if times is not None else {}
    if (at := cache.get(resolved_at)) is None:
        at = cache[resolved_at] = _TIMES.dump_json(resolved_at).decode()
    battle_id = str(row.battle_id)
    game = json.dumps(row.game_id)
    best_of_others = sorted(range(len(ranks)), key=lambda i: ranks[i])
    records = []
    for index, side in enumerate(row.sides):
        rank = ranks[index]
        opponent = json.dumps(row.sides[next(i for i in best_of_others if i != index)][0])
        outcome = "win" if rank == 1 else "loss"
        score = battle_engine.score_of(rank, len(ranks))
        for player in side:
            records.append(
                (
                    player.encode(),
                    (
                        f'{{"event_id":"{_event_id(battle_id, player)}",'
                        f'"player_id":{json.dumps(player)},"type":"match_result",'
                        f'"payload":{{"outcome":"{outcome}","score":{score},'
                        f'"opponent":{opponent},"match_id":"{battle_id}"}},'
                        f'"occurred_at":{at},"sent_at":null,"schema_version":1,'
                        f'"game_id":{game},"received_at":{at}}}'
                    ).encode(),
                )
            )
    return records


def match_events(row: StoredBattle) -> list[GameEvent]:
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


_QUEUE_UNKNOWN = text(
    "INSERT INTO battles (battle_id, game_id, mode, sides, status, requested_at)"
    " SELECT b.id, b.game, b.mode, CAST(b.sides AS jsonb), 'queued', b.at"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:games AS text[]), CAST(:modes AS text[]),"
    " CAST(:sides AS text[]), CAST(:at AS timestamptz[])) AS b(id, game, mode, sides, at)"
    " ON CONFLICT DO NOTHING"
)
_LOCK_BATTLES = text(
    "SELECT battle_id, game_id, sides, status, result, requested_at, resolved_at FROM battles"
    " WHERE battle_id = ANY(CAST(:ids AS uuid[])) ORDER BY battle_id FOR UPDATE"
)
_CREATE_PLAYERS = text(
    "INSERT INTO players (game_id, player_id, display_name, mu, sigma, created_at, updated_at)"
    " SELECT k.g, k.p, left(k.p, 64), :mu, :sigma, :now, :now"
    " FROM unnest(CAST(:games AS text[]), CAST(:players AS text[])) AS k(g, p)"
    " ORDER BY k.g, k.p ON CONFLICT (game_id, player_id) DO NOTHING"
    " RETURNING game_id, player_id, is_active, mu, sigma, battles, wins, losses"
)
# The usual batch's one read of its players: locked in key order, with the power items they
# give (the items of the app user a player is linked to in that game: identity's
# player_links, content's inventory_items and catalog_items, with a numeric "power"
# property; a JSON array of [item id, quantity, power] per stack, null without any), read in
# the same transaction and stored with each result.
_LOCK_PLAYERS_WITH_ITEMS = text(
    "SELECT p.game_id, p.player_id, p.is_active, p.mu, p.sigma, p.battles, p.wins, p.losses,"
    " (SELECT json_agg(json_build_array(i.item_id, i.quantity,"
    " CAST(c.properties ->> 'power' AS float8)) ORDER BY i.item_id, i.unlocked_by)"
    " FROM player_links l"
    " JOIN inventory_items i ON i.game_id = l.game_id AND i.owner_id = l.user_id"
    " JOIN catalog_items c ON c.game_id = i.game_id AND c.item_id = i.item_id"
    " WHERE l.game_id = p.game_id AND l.player_id = p.player_id"
    " AND c.is_active AND jsonb_typeof(c.properties -> 'power') = 'number') AS items"
    " FROM players p"
    " WHERE (p.game_id, p.player_id) IN"
    " (SELECT * FROM unnest(CAST(:games AS text[]), CAST(:players AS text[])))"
    " ORDER BY p.game_id, p.player_id FOR UPDATE OF p"
)
# The items of players this batch created (a player may be linked to an app user who owns
# items before their first battle).
_ITEMS = text(
    "SELECT l.player_id, l.game_id, i.item_id, i.quantity,"
    " CAST(c.properties ->> 'power' AS float8) AS power"
    " FROM player_links l"
    " JOIN inventory_items i ON i.game_id = l.game_id AND i.owner_id = l.user_id"
    " JOIN catalog_items c ON c.game_id = i.game_id AND c.item_id = i.item_id"
    " WHERE (l.game_id, l.player_id) IN"
    " (SELECT * FROM unnest(CAST(:games AS text[]), CAST(:players AS text[])))"
    " AND c.is_active AND jsonb_typeof(c.properties -> 'power') = 'number'"
    " ORDER BY l.game_id, l.player_id, i.item_id, i.unlocked_by"
)
# The writes take their rows as ONE json parameter (json_to_recordset): json.dumps builds it in
# C, where binding one array per column had psycopg dump every element in Python (~17% of the
# engine process's CPU, py-spy); floats round-trip exactly (repr, float8 input).
_WRITE = text(
    "WITH written AS (UPDATE battles AS b SET status = u.status, reason = u.reason,"
    " result = u.result, seed = u.seed, engine_version = u.version, resolved_at = :now"
    " FROM json_to_recordset(CAST(:battles AS json))"
    " AS u(id uuid, status text, reason text, result jsonb, seed bigint, version smallint)"
    " WHERE b.battle_id = u.id),"
    " history AS (INSERT INTO rating_history (battle_id, player_id, game_id, rank, mu_before,"
    " sigma_before, mu_after, sigma_after, rated_at)"
    " SELECT u.*, :now FROM json_to_recordset(CAST(:history AS json)) AS u(id uuid,"
    " player text, game text, rank smallint, mu_before float8, sigma_before float8,"
    " mu_after float8, sigma_after float8))"
    " UPDATE players AS p SET mu = u.mu, sigma = u.sigma, battles = u.battles, wins = u.wins,"
    " losses = u.losses, updated_at = :now"
    " FROM json_to_recordset(CAST(:players AS json)) AS u(g text, p text, mu float8,"
    " sigma float8, battles integer, wins integer, losses integer)"
    " WHERE p.game_id = u.g AND p.player_id = u.p"
)


def _battle_rows(
    conn: Connection, requests: Sequence[BattleRequest]
) -> dict[uuid.UUID, StoredBattle]:
    """The batch's battles, locked in id order. One the API did not queue (a producer that
    bypassed it) is queued here first, then locked too: the usual batch, queued by the API,
    takes one statement (the lock), not an INSERT of conflicts before it."""
    rows = _lock_battles(conn, sorted({r.battle_id for r in requests}))
    unknown = {r.battle_id: r for r in requests if r.battle_id not in rows}
    if unknown:
        missing = list(unknown.values())
        conn.execute(
            _QUEUE_UNKNOWN,
            {
                "ids": [r.battle_id for r in missing],
                "games": [r.game_id for r in missing],
                "modes": [r.mode for r in missing],
                "sides": [json.dumps(r.sides) for r in missing],
                "at": [r.requested_at for r in missing],
            },
        )
        rows.update(_lock_battles(conn, sorted(unknown)))
    return rows


def _lock_battles(conn: Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, StoredBattle]:
    return {
        row.battle_id: StoredBattle(
            row.battle_id,
            row.game_id,
            row.sides,
            BattleStatus(row.status),
            row.result,
            row.requested_at,
            row.resolved_at,
        )
        for row in conn.execute(_LOCK_BATTLES, {"ids": ids})
    }


def _lock_players(
    conn: Connection, battles: Sequence[StoredBattle], now: datetime
) -> dict[tuple[str, str], _Rated]:
    """Every player of the batch's battles, locked in key order, then those not known yet
    created (in key order; a row this transaction inserts is locked by it) and any that
    another transaction created in between locked: one statement when every player has
    battled before, at most three otherwise. Locks are taken in key order within each
    step; a deadlock this could still meet (two processes sharing a game's players during a
    rebalance) is an error PostgreSQL breaks, and the pipeline retries the batch."""
    keys = sorted({(b.game_id, p) for b in battles for side in b.sides for p in side})
    locked = _locked_players(conn, _LOCK_PLAYERS_WITH_ITEMS, keys)
    missing = [key for key in keys if key not in locked]
    if missing:
        first = ratings.initial()
        extra = {"mu": first.mu, "sigma": first.sigma, "now": now}
        created = _locked_players(conn, _CREATE_PLAYERS, missing, extra)
        locked.update(created)
        raced = [key for key in missing if key not in locked]
        if raced:
            locked.update(_locked_players(conn, _LOCK_PLAYERS_WITH_ITEMS, raced))
        if created:
            _read_items(conn, created)
    return locked


def _read_items(conn: Connection, players: dict[tuple[str, str], _Rated]) -> None:
    """The power items of ``players`` (created by this batch), one statement."""
    keys = list(players)
    owned: dict[tuple[str, str], list[list[Any]]] = {}
    for item in conn.execute(
        _ITEMS, {"games": [g for g, _p in keys], "players": [p for _g, p in keys]}
    ):
        owned.setdefault((item.game_id, item.player_id), []).append(
            [item.item_id, item.quantity, item.power]
        )
    for key, stacks in owned.items():
        players[key].items = _merged(stacks)


def _merged(stacks: list[list[Any]]) -> list[battle_engine.OwnedItem]:
    """A player's stacks of power items (in item order), one per item: a stack per unlocker,
    the quantities add up."""
    items: dict[str, list[Any]] = {}
    for item_id, quantity, power in stacks:
        if item_id in items:
            items[item_id][1] += quantity
        else:
            items[item_id] = [item_id, quantity, float(power)]
    return [(i, q, p) for i, q, p in items.values()]


def _locked_players(
    conn: Connection,
    statement: Any,
    keys: Sequence[tuple[str, str]],
    extra: dict[str, Any] | None = None,
) -> dict[tuple[str, str], _Rated]:
    params = {"games": [g for g, _p in keys], "players": [p for _g, p in keys], **(extra or {})}
    found = {}
    for r in conn.execute(statement, params):
        player = _Rated(r.is_active, r.mu, r.sigma, r.battles, r.wins, r.losses)
        if stacks := getattr(r, "items", None):  # _LOCK_PLAYERS_WITH_ITEMS
            player.items = _merged(stacks)
        found[(r.game_id, r.player_id)] = player
    return found


@dataclass
class _Writes:
    """What the batch writes: the rows of each table, as json_to_recordset reads them."""

    battles: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def _resolve_one(
    row: StoredBattle, players: dict[tuple[str, str], _Rated], writes: _Writes, now: datetime
) -> bool:
    """Resolve and rate one queued battle in memory; False when it is rejected (with the
    reason). ``row`` and ``players`` are updated, ``writes`` collects the rows to write."""
    sides = [[(p, players[(row.game_id, p)]) for p in side] for side in row.sides]
    inactive = [pid for side in sides for pid, p in side if not p.is_active]
    battle_id = str(row.battle_id)
    row.resolved_at = now
    if inactive:
        row.status = BattleStatus.rejected
        writes.battles.append(
            {
                "id": battle_id,
                "status": row.status.value,
                "reason": f"deactivated players cannot battle: {', '.join(inactive)}",
            }
        )
        return False
    seed = battle_engine.seed_of(row.battle_id)
    items = {pid: p.items for side in sides for pid, p in side if p.items}
    power = {pid: battle_engine.item_power(owned) for pid, owned in items.items()}
    result = battle_engine.resolve(
        [[(pid, p.mu) for pid, p in side] for side in sides], seed, power
    )
    before = [[ratings.Rating(p.mu, p.sigma) for _pid, p in side] for side in sides]
    after = ratings.rate(before, result.ranks)
    history = writes.history
    for side, old_side, new_side, rank in zip(sides, before, after, result.ranks, strict=True):
        for (player_id, player), old, new in zip(side, old_side, new_side, strict=True):
            history.append(
                {
                    "id": battle_id,
                    "player": player_id,
                    "game": row.game_id,
                    "rank": rank,
                    "mu_before": old.mu,
                    "sigma_before": old.sigma,
                    "mu_after": new.mu,
                    "sigma_after": new.sigma,
                }
            )
            player.mu, player.sigma = new.mu, new.sigma
            player.battles += 1
            if rank == 1:
                player.wins += 1
            else:
                player.losses += 1
            player.changed = True
    row.status = BattleStatus.resolved
    row.result = {
        "ranks": list(result.ranks),
        "win_probabilities": list(result.win_probabilities),
        # the items the engine read, per player: [item id, quantity, power per unit]
        "items": {pid: [list(item) for item in owned] for pid, owned in items.items()},
    }
    writes.battles.append(
        {
            "id": battle_id,
            "status": row.status.value,
            "result": row.result,
            "seed": result.seed,
            "version": result.engine_version,
        }
    )
    return True


def _write(
    conn: Connection, writes: _Writes, players: dict[tuple[str, str], _Rated], now: datetime
) -> None:
    """The batch's rows: ONE statement (a data-modifying CTE per table), each table's rows
    in one json parameter."""
    changed = [
        {
            "g": game_id,
            "p": player_id,
            "mu": p.mu,
            "sigma": p.sigma,
            "battles": p.battles,
            "wins": p.wins,
            "losses": p.losses,
        }
        for (game_id, player_id), p in players.items()
        if p.changed
    ]
    if writes.battles:
        conn.execute(
            _WRITE,
            {
                "battles": json.dumps(writes.battles),
                "history": json.dumps(writes.history),
                "players": json.dumps(changed),
                "now": now,
            },
        )


def resolve_batch(engine: Engine, requests: Sequence[BattleRequest], now: datetime) -> BatchOutcome:
    """The engine agent's batch in ONE transaction (module docstring): the battles and their
    players locked with one statement each (plus the inserts of unknown ones), resolved and
    rated in memory in the batch's order, then one set-based write per table, no ORM objects
    (docs/battles.md#benchmark-benchbattlespy for the figures)."""
    if not requests:
        return BatchOutcome(0, 0, 0, [])
    resolved = rejected = duplicates = 0
    events: list[tuple[bytes, bytes]] = []
    times: dict[datetime, str] = {}
    seen: set[uuid.UUID] = set()
    writes = _Writes()
    with engine.begin() as conn:
        battles = _battle_rows(conn, requests)
        queued = [b for b in battles.values() if b.status == BattleStatus.queued]
        players = _lock_players(conn, queued, now) if queued else {}
        for request in requests:
            row = battles[request.battle_id]  # the stored battle is the one resolved
            if request.battle_id in seen or row.status != BattleStatus.queued:
                duplicates += 1
            elif _resolve_one(row, players, writes, now):
                resolved += 1
            else:
                rejected += 1
            if request.battle_id not in seen and row.status == BattleStatus.resolved:
                events.extend(match_event_records(row, times))
            seen.add(request.battle_id)
        _write(conn, writes, players, now)
    return BatchOutcome(resolved, rejected, duplicates, events)
