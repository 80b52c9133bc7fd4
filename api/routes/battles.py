"""``/v1/battles``: game servers queue battles, read their rated results, and manage the
battle profiles of their players (game key on every route).

``POST /v1/battles`` records the battle as ``queued`` and produces it to
``battles.requests.v1``; the 202 comes after the broker acknowledged it. The engine agent
resolves and rates it; ``GET /v1/battles/{id}`` shows ``queued``, then ``resolved`` with the
result (or ``rejected`` with the reason). See docs/battles.md.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from api.auth import GAME_KEY_ERRORS, QUOTA_ERRORS, GameDep
from api.body import limited_body_route
from api.deps import EngineDep
from api.errors import NOT_JSON, error_responses
from api.kafka import KAFKA_ERRORS, ProducerDep
from core.battles import matchmaking, profiles
from core.battles.contracts import IncomingBattle, Mode
from core.battles.models import BattleStatus, TicketStatus
from core.battles.store import (
    BattleView,
    IdempotencyKeyReused,
    get_battle,
    queue_battle,
    queue_battles,
    withdraw_unpublished,
    withdraw_unpublished_many,
)
from core.events.contracts import describe_error
from core.identity.ids import PLAYER_ID_PATTERN
from core.platform.errors import Unavailable
from core.platform.topics import BATTLE_REQUESTS

MAX_BODY_BYTES = 16 * 1024
# A batch: up to 500 battles within the front door's default body cap (STRIDE_API_MAX_BODY_BYTES,
# 64 KiB, which nginx enforces on /v1/battles too): 500 duels with short ids and keys fit, big
# team battles do not (send fewer per request).
MAX_BATCH_BATTLES = 500
RETRY = (
    "The battle did not reach the engine: retry with the same idempotency_key (no double battle;"
    " without a key the retry is a new battle)."
)

router = APIRouter(
    prefix="/v1/battles",
    tags=["battles"],
    route_class=limited_body_route(lambda _settings: MAX_BODY_BYTES, "send one battle"),
)

PlayerId = Annotated[str, Path(pattern=PLAYER_ID_PATTERN, description="The game's player id")]
DisplayName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]


class QueuedBattle(BaseModel):
    battle_id: uuid.UUID
    status: BattleStatus
    created: bool = Field(description="False when this idempotency key was already queued")


class BattleBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    battles: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH_BATTLES,
        description="Battles as POST /v1/battles takes them (mode, sides, optional "
        "idempotency_key); each is validated on its own and refused on its own",
    )


class BatchItem(BaseModel):
    index: int = Field(description="The battle's position in the posted list")
    status_code: int = Field(description="202 queued, 409 key reused, 422 invalid")
    battle_id: uuid.UUID | None = None
    status: BattleStatus | None = None
    created: bool | None = Field(
        default=None, description="False when this idempotency key was already queued"
    )
    code: str | None = Field(default=None, description="The refusal's code (invalid, ...)")
    detail: str | None = Field(default=None, description="Why the battle was refused")


class BatchAnswer(BaseModel):
    queued: int = Field(description="Battles accepted (new or already known)")
    refused: int
    battles: list[BatchItem] = Field(description="One per posted battle, in order")


class RatingChangePublic(BaseModel):
    player_id: str
    rank: int
    mu_before: float
    sigma_before: float
    mu_after: float
    sigma_after: float


class BattlePublic(BaseModel):
    battle_id: uuid.UUID
    game_id: str
    mode: str
    sides: list[list[str]]
    status: BattleStatus
    reason: str | None = Field(description="Why it was rejected")
    ranks: list[int] | None = Field(description="Per side, in the posted order: 1 won")
    win_probabilities: list[float] | None = Field(description="Per side, before the battle")
    items: dict[str, list[list[Any]]] | None = Field(
        description="The items the engine counted, per player: [item id, quantity, power "
        "per unit]; players without power items are not named"
    )
    seed: int | None
    engine_version: int | None
    requested_at: datetime
    resolved_at: datetime | None
    rating_changes: list[RatingChangePublic]


class PlayerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    player_id: str = Field(pattern=PLAYER_ID_PATTERN)
    display_name: DisplayName


class PlayerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName


class PlayerPublic(BaseModel):
    game_id: str
    player_id: str
    display_name: str
    is_active: bool
    mu: float = Field(description="Weng-Lin (OpenSkill Plackett-Luce) skill mean")
    sigma: float = Field(description="Its uncertainty")
    ordinal: float = Field(description="mu - 3 sigma: the conservative skill")
    battles: int
    wins: int
    losses: int
    user_id: str | None = Field(description="The app user the player is linked to, if any")
    created_at: datetime
    updated_at: datetime


class TicketCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    player_id: str = Field(pattern=PLAYER_ID_PATTERN)
    mode: Mode


class TicketPublic(BaseModel):
    ticket_id: uuid.UUID
    game_id: str
    mode: str
    player_id: str
    status: TicketStatus = Field(description="waiting, matched (see battle_id) or expired")
    battle_id: uuid.UUID | None
    created_at: datetime


def _withdraw(engine: Engine, battle_id: uuid.UUID) -> None:
    with Session(engine) as session, session.begin():
        withdraw_unpublished(session, battle_id)


def _withdraw_many(engine: Engine, battle_ids: list[uuid.UUID]) -> None:
    with Session(engine) as session, session.begin():
        withdraw_unpublished_many(session, battle_ids)


def _ticket(view: matchmaking.TicketView) -> TicketPublic:
    return TicketPublic(**vars(view))


def _battle(view: BattleView) -> BattlePublic:
    return BattlePublic(
        battle_id=view.battle_id,
        game_id=view.game_id,
        mode=view.mode,
        sides=view.sides,
        status=view.status,
        reason=view.reason,
        ranks=view.ranks,
        win_probabilities=view.win_probabilities,
        items=view.items,
        seed=view.seed,
        engine_version=view.engine_version,
        requested_at=view.requested_at,
        resolved_at=view.resolved_at,
        rating_changes=[RatingChangePublic(**vars(c)) for c in view.rating_changes],
    )


def _player(profile: profiles.PlayerProfile) -> PlayerPublic:
    return PlayerPublic(**vars(profile))


PLAYER_NOT_FOUND = error_responses({404: "The game has no such player (player_not_found)"})


@router.post(
    "",
    status_code=202,
    response_model=QueuedBattle,
    summary="Queue a battle of two or more players or teams",
    responses={
        **GAME_KEY_ERRORS,
        **QUOTA_ERRORS,
        **NOT_JSON,
        **error_responses(
            {
                409: "The idempotency key was used for another battle (idempotency_key_reused)",
                413: f"Body over {MAX_BODY_BYTES} bytes (one battle per request)",
            }
        ),
        **KAFKA_ERRORS,
    },
)
async def post_battle(
    body: IncomingBattle, game_id: GameDep, engine: EngineDep, producer: ProducerDep
) -> QueuedBattle:
    request = body.stamp(game_id, body.battle_id(game_id), datetime.now(UTC))

    def queue() -> tuple[BattleView, bool]:
        with Session(engine) as session, session.begin():
            return queue_battle(session, request, body.idempotency_key)

    view, created = await run_in_threadpool(queue)  # the event loop keeps serving
    if view.status == BattleStatus.queued:  # a retry may find it resolved already
        record = (request.record_key(), request.model_dump_json().encode())
        try:
            await producer.produce(BATTLE_REQUESTS, [record], retry=RETRY)
        except Unavailable:
            if created and body.idempotency_key is None:  # its retry gets a new battle id
                await run_in_threadpool(_withdraw, engine, view.battle_id)
            raise
    return QueuedBattle(battle_id=view.battle_id, status=view.status, created=created)


async def post_battles_batch(
    body: BattleBatch, game_id: GameDep, engine: EngineDep, producer: ProducerDep
) -> BatchAnswer:
    """Each battle is answered as ``POST /v1/battles`` would (202 queued, 409, 422), in one
    database round trip and one produce for the whole batch. When the broker does not take
    the batch the whole request is a 503; its battles without an idempotency key that this
    request created are withdrawn (their retry gets new ids), those with a key stay queued."""
    now = datetime.now(UTC)
    items: list[BatchItem | None] = [None] * len(body.battles)
    valid: list[tuple[int, IncomingBattle]] = []
    for index, raw in enumerate(body.battles):
        try:
            valid.append((index, IncomingBattle.model_validate(raw)))
        except ValidationError as exc:
            detail = describe_error(exc, f"battles.{index}.")
            items[index] = BatchItem(index=index, status_code=422, code="invalid", detail=detail)
    requests = [(i, b, b.stamp(game_id, b.battle_id(game_id), now)) for i, b in valid]

    def queue() -> list[Any]:
        with Session(engine) as session, session.begin():
            return queue_battles(session, [(r, b.idempotency_key) for _i, b, r in requests])

    answers = await run_in_threadpool(queue) if requests else []
    records: dict[uuid.UUID, tuple[bytes, bytes]] = {}
    keyless_new: list[uuid.UUID] = []
    for (index, battle, request), answer in zip(requests, answers, strict=True):
        if isinstance(answer, IdempotencyKeyReused):
            items[index] = BatchItem(
                index=index, status_code=409, code=answer.code, detail=answer.message
            )
            continue
        items[index] = BatchItem(
            index=index,
            status_code=202,
            battle_id=answer.battle_id,
            status=answer.status,
            created=answer.created,
        )
        if answer.status == BattleStatus.queued:  # a retry may find it resolved already
            records.setdefault(
                answer.battle_id,
                (request.record_key(), request.model_dump_json().encode()),
            )
        if answer.created and battle.idempotency_key is None:
            keyless_new.append(answer.battle_id)
    if records:
        try:
            await producer.produce(BATTLE_REQUESTS, list(records.values()), retry=RETRY)
        except Unavailable:
            await run_in_threadpool(_withdraw_many, engine, keyless_new)
            raise
    done = [item for item in items if item is not None]
    queued = sum(1 for item in done if item.status_code == 202)
    return BatchAnswer(queued=queued, refused=len(done) - queued, battles=done)


router.add_api_route(
    "/batch",
    post_battles_batch,
    methods=["POST"],
    status_code=202,
    response_model=BatchAnswer,
    summary=f"Queue up to {MAX_BATCH_BATTLES} battles; each is answered (or refused) on its own",
    responses={
        **GAME_KEY_ERRORS,
        **QUOTA_ERRORS,
        **NOT_JSON,
        **error_responses({413: "Body over STRIDE_API_MAX_BODY_BYTES (send fewer battles)"}),
        **KAFKA_ERRORS,
    },
    route_class_override=limited_body_route(
        lambda settings: settings.api_max_body_bytes, "send fewer battles per request"
    ),
)


@router.post(
    "/tickets",
    status_code=201,
    response_model=TicketPublic,
    summary="Put a player in the matchmaking queue of a mode (one waiting ticket per player)",
    responses={
        **GAME_KEY_ERRORS,
        **QUOTA_ERRORS,
        **NOT_JSON,
        **error_responses(
            {
                404: "The player is deactivated (player_not_found)",
                409: "The player already waits (player_already_waiting)",
            }
        ),
    },
)
def join_queue(body: TicketCreate, game_id: GameDep, engine: EngineDep) -> TicketPublic:
    with Session(engine) as session, session.begin():
        ticket = matchmaking.join_queue(
            session, game_id, body.player_id, body.mode, now=datetime.now(UTC)
        )
    return _ticket(ticket)


@router.get(
    "/tickets/{ticket_id}",
    response_model=TicketPublic,
    summary="A matchmaking ticket: waiting, matched with its battle, or expired",
    responses={**GAME_KEY_ERRORS, **error_responses({404: "No such ticket (ticket_not_found)"})},
)
def read_ticket(ticket_id: uuid.UUID, game_id: GameDep, engine: EngineDep) -> TicketPublic:
    with Session(engine) as session:
        return _ticket(matchmaking.get_ticket(session, game_id, ticket_id))


@router.get(
    "/{battle_id}",
    response_model=BattlePublic,
    summary="A battle: queued, resolved with its result and rating changes, or rejected",
    responses={**GAME_KEY_ERRORS, **error_responses({404: "No such battle (battle_not_found)"})},
)
def read_battle(battle_id: uuid.UUID, game_id: GameDep, engine: EngineDep) -> BattlePublic:
    with Session(engine) as session:
        return _battle(get_battle(session, game_id, battle_id))


@router.post(
    "/players",
    status_code=201,
    response_model=PlayerPublic,
    summary="Create a player's battle profile (players are also created on a first battle)",
    responses={
        **GAME_KEY_ERRORS,
        **QUOTA_ERRORS,
        **NOT_JSON,
        **error_responses({409: "The player exists (player_exists)"}),
    },
)
def create_player(body: PlayerCreate, game_id: GameDep, engine: EngineDep) -> PlayerPublic:
    with Session(engine) as session, session.begin():
        profile = profiles.create_player(
            session, game_id, body.player_id, body.display_name, now=datetime.now(UTC)
        )
    return _player(profile)


@router.get(
    "/players/{player_id}",
    response_model=PlayerPublic,
    summary="A player's battle profile: rating, record, linked app user",
    responses={**GAME_KEY_ERRORS, **PLAYER_NOT_FOUND},
)
def show_player(player_id: PlayerId, game_id: GameDep, engine: EngineDep) -> PlayerPublic:
    with Session(engine) as session:
        return _player(profiles.show_player(session, game_id, player_id))


@router.patch(
    "/players/{player_id}",
    response_model=PlayerPublic,
    summary="Change a player's display name",
    responses={**GAME_KEY_ERRORS, **QUOTA_ERRORS, **NOT_JSON, **PLAYER_NOT_FOUND},
)
def rename_player(
    player_id: PlayerId, body: PlayerUpdate, game_id: GameDep, engine: EngineDep
) -> PlayerPublic:
    with Session(engine) as session, session.begin():
        profile = profiles.rename_player(
            session, game_id, player_id, body.display_name, now=datetime.now(UTC)
        )
    return _player(profile)


@router.delete(
    "/players/{player_id}",
    response_model=PlayerPublic,
    summary="Deactivate a player: their new battles are rejected; history stays",
    responses={**GAME_KEY_ERRORS, **QUOTA_ERRORS, **PLAYER_NOT_FOUND},
)
def deactivate_player(player_id: PlayerId, game_id: GameDep, engine: EngineDep) -> PlayerPublic:
    with Session(engine) as session, session.begin():
        profile = profiles.deactivate_player(session, game_id, player_id, now=datetime.now(UTC))
    return _player(profile)
