"""``/v1/leaderboards``: definitions, standings with cursors, a player's rank and neighbours,
past periods, on-demand reset.

Reading standings is public. Creating and resetting a leaderboard needs the ``X-Api-Key``
of the game it belongs to (the game server's key). What the leaderboards refuse
(``core.leaderboards.errors``) reaches the client through the handler of ``api/errors.py``
with its status code, so the routes just call them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from api.auth import GameDep
from api.body import limited_body_route
from api.deps import EngineDep
from api.errors import NOT_JSON, ErrorBody, error_responses
from core.identity.ids import GAME_ID_PATTERN, PLAYER_ID_PATTERN
from core.leaderboards import definitions, reads
from core.leaderboards.rules import (
    LEADERBOARD_ID_PATTERN,
    Operator,
    SortOrder,
    validate_schedule,
)
from core.platform.json_bounds import json_problem

MAX_PAGE = 1000
MAX_AROUND = 100
MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 16
MAX_BODY_BYTES = 64 * 1024  # a definition: its fields and at most 16 KiB of metadata
# The list is public: a page holds at most MAX_LIST definitions (16 KiB of metadata each).
DEFAULT_LIST, MAX_LIST = 100, 200

router = APIRouter(
    prefix="/v1/leaderboards",
    tags=["leaderboards"],
    route_class=limited_body_route(
        lambda _settings: MAX_BODY_BYTES, "metadata may hold at most 16 KiB of JSON"
    ),
)


class LeaderboardCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        pattern=LEADERBOARD_ID_PATTERN,
        description="Slug: a-z, 0-9, _ . - (1-64 characters)",
        examples=["tri-weekly"],
    )
    game_id: str = Field(pattern=GAME_ID_PATTERN, description="The game it ranks", examples=["tri"])
    sort_order: SortOrder = Field(
        default=SortOrder.desc, description="desc: higher is better; asc: lower is better"
    )
    operator: Operator = Field(
        default=Operator.best,
        description="best: keep the best; set: replace; incr: add; decr: subtract (floor 0)",
    )
    reset_schedule: str | None = Field(
        default=None,
        max_length=128,
        description="5-field cron in UTC (e.g. '0 0 * * 1' weekly); null: never resets",
        examples=["0 0 * * 1"],
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free JSON for clients")

    @field_validator("reset_schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return validate_schedule(value) if value else None

    @field_validator("metadata")
    @classmethod
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        problem = json_problem(
            value, max_bytes=MAX_METADATA_BYTES, max_depth=MAX_METADATA_DEPTH, name="metadata"
        )
        if problem:
            raise ValueError(problem)
        return value


class PeriodPublic(BaseModel):
    start: datetime
    end: datetime | None = Field(description="Scheduled or actual end; null: no end")


class LeaderboardPublic(BaseModel):
    id: str
    game_id: str
    sort_order: SortOrder
    operator: Operator
    reset_schedule: str | None
    metadata: dict[str, Any]
    created_at: datetime
    current_period: PeriodPublic


class RecordPublic(BaseModel):
    rank: int = Field(description="1 is best; ties go to the score reached first")
    owner_id: str
    score: int
    num_score: int = Field(description="Submissions counted")
    reached_at: datetime = Field(description="When this score was first reached")
    updated_at: datetime


class StandingsPublic(BaseModel):
    leaderboard_id: str
    period: PeriodPublic
    records: list[RecordPublic]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null: end")


class PeriodSummaryPublic(BaseModel):
    start: datetime
    end: datetime | None
    archived_at: datetime | None = Field(description="null while the period is open")
    records: int


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period_start: AwareDatetime | None = Field(
        default=None,
        description="The period to archive; when it is already archived nothing happens",
    )


class ResetPublic(BaseModel):
    leaderboard_id: str
    archived: list[datetime] = Field(description="Starts of the periods archived; empty: no-op")
    current_period_start: datetime
    reason: str


LeaderboardId = Annotated[
    str, Path(pattern=LEADERBOARD_ID_PATTERN, description="Leaderboard id (slug)")
]
OwnerId = Annotated[str, Path(pattern=PLAYER_ID_PATTERN, description="Player id")]
PeriodStart = Annotated[
    AwareDatetime | None,
    Query(description="Start of a past period (see /periods); default: the current period"),
]
_NOT_FOUND = error_responses({404: "No such leaderboard, period or record"})
_AUTH = {
    **NOT_JSON,
    **error_responses(
        {401: "X-Api-Key header missing", 403: "X-Api-Key is not the key of this game"}
    ),
    **error_responses({413: f"Body larger than {MAX_BODY_BYTES} bytes"}),
}


def _public(board: definitions.LeaderboardDefinition) -> LeaderboardPublic:
    period = definitions.current_board_period(board)
    return LeaderboardPublic(
        id=board.id,
        game_id=board.game_id,
        sort_order=board.sort_order,
        operator=board.operator,
        reset_schedule=board.reset_schedule,
        metadata=board.metadata,
        created_at=board.created_at,
        current_period=PeriodPublic(start=period.start, end=period.end),
    )


def _record(record: reads.RankedRecord) -> RecordPublic:
    return RecordPublic(
        rank=record.rank,
        owner_id=record.owner_id,
        score=record.score,
        num_score=record.num_score,
        reached_at=record.reached_at,
        updated_at=record.updated_at,
    )


@router.post(
    "",
    status_code=201,
    response_model=LeaderboardPublic,
    summary="Create a leaderboard (game server key)",
    responses={
        **_AUTH,
        409: {
            "model": ErrorBody,
            "description": "The id is taken, or the game has its most leaderboards"
            f" ({definitions.MAX_PER_GAME}: too_many_leaderboards)",
        },
    },
)
def create_leaderboard(
    body: LeaderboardCreate, engine: EngineDep, game_id: GameDep
) -> LeaderboardPublic:
    if body.game_id != game_id:
        raise HTTPException(403, f"X-Api-Key is the key of game {game_id!r}, not {body.game_id!r}")
    with engine.begin() as conn:
        board = definitions.create_leaderboard(
            conn,
            leaderboard_id=body.id,
            game_id=body.game_id,
            sort_order=body.sort_order,
            operator=body.operator,
            reset_schedule=body.reset_schedule,
            metadata=body.metadata,
        )
    return _public(board)


@router.get(
    "",
    response_model=list[LeaderboardPublic],
    summary="List leaderboards, by game and id, a page at a time",
    responses={404: {"model": ErrorBody, "description": "`after` names no leaderboard"}},
)
def list_leaderboards(
    engine: EngineDep,
    game_id: Annotated[
        str | None, Query(pattern=GAME_ID_PATTERN, description="Only this game's")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIST, description=f"At most this many (1-{MAX_LIST})")
    ] = DEFAULT_LIST,
    after: Annotated[
        str | None,
        Query(
            pattern=LEADERBOARD_ID_PATTERN,
            description="The last id of the previous page: the ones after it",
        ),
    ] = None,
) -> list[LeaderboardPublic]:
    with engine.connect() as conn:
        boards = definitions.list_leaderboards(conn, game_id, limit=limit, after=after)
    return [_public(board) for board in boards]


@router.get(
    "/{leaderboard_id}",
    response_model=LeaderboardPublic,
    summary="One leaderboard's definition and current period",
    responses=_NOT_FOUND,
)
def get_leaderboard(leaderboard_id: LeaderboardId, engine: EngineDep) -> LeaderboardPublic:
    with engine.connect() as conn:
        return _public(definitions.get_leaderboard(conn, leaderboard_id))


@router.get(
    "/{leaderboard_id}/records",
    response_model=StandingsPublic,
    summary="Standings, best first, a page at a time",
    responses={
        **_NOT_FOUND,
        400: {"model": ErrorBody, "description": "The cursor is not one this API returned"},
    },
)
def standings(
    leaderboard_id: LeaderboardId,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Records per page")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=2048, description="next_cursor of the previous page")
    ] = None,
    period_start: PeriodStart = None,
) -> StandingsPublic:
    with engine.connect() as conn:
        page = reads.top(
            conn, leaderboard_id, limit=limit, cursor=cursor, period_start=period_start
        )
    return StandingsPublic(
        leaderboard_id=page.leaderboard_id,
        period=PeriodPublic(start=page.period.start, end=page.period.end),
        records=[_record(r) for r in page.records],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/{leaderboard_id}/records/{owner_id}",
    response_model=RecordPublic,
    summary="A player's record and rank",
    responses=_NOT_FOUND,
)
def player_rank(
    leaderboard_id: LeaderboardId,
    owner_id: OwnerId,
    engine: EngineDep,
    period_start: PeriodStart = None,
) -> RecordPublic:
    with engine.connect() as conn:
        record = reads.rank_of(conn, leaderboard_id, owner_id, period_start=period_start)
    if record is None:
        raise HTTPException(404, f"{owner_id!r} has no record in this period of {leaderboard_id!r}")
    return _record(record)


@router.get(
    "/{leaderboard_id}/records/{owner_id}/around",
    response_model=list[RecordPublic],
    summary="A player and the players ranked just above and below",
    responses=_NOT_FOUND,
)
def around_player(
    leaderboard_id: LeaderboardId,
    owner_id: OwnerId,
    engine: EngineDep,
    limit: Annotated[
        int, Query(ge=0, le=MAX_AROUND, description="Records on each side of the player")
    ] = 10,
    period_start: PeriodStart = None,
) -> list[RecordPublic]:
    with engine.connect() as conn:
        records = reads.around(
            conn, leaderboard_id, owner_id, limit=limit, period_start=period_start
        )
    if not records:
        raise HTTPException(404, f"{owner_id!r} has no record in this period of {leaderboard_id!r}")
    return [_record(r) for r in records]


@router.get(
    "/{leaderboard_id}/periods",
    response_model=list[PeriodSummaryPublic],
    summary="Every period, newest first; archived ones stay queryable",
    responses=_NOT_FOUND,
)
def periods(leaderboard_id: LeaderboardId, engine: EngineDep) -> list[PeriodSummaryPublic]:
    with engine.connect() as conn:
        summaries = definitions.list_periods(conn, leaderboard_id)
    return [
        PeriodSummaryPublic(start=p.start, end=p.end, archived_at=p.archived_at, records=p.records)
        for p in summaries
    ]


@router.post(
    "/{leaderboard_id}/reset",
    response_model=ResetPublic,
    summary="Archive the current period and start the next (idempotent)",
    responses={
        **_AUTH,
        **_NOT_FOUND,
        409: {"model": ErrorBody, "description": "period_start has not started yet"},
    },
)
def reset(
    leaderboard_id: LeaderboardId,
    engine: EngineDep,
    game_id: GameDep,
    body: ResetRequest | None = None,
) -> ResetPublic:
    with engine.begin() as conn:
        board = definitions.get_leaderboard(conn, leaderboard_id)
        if board.game_id != game_id:
            raise HTTPException(
                403, f"leaderboard {leaderboard_id!r} belongs to game {board.game_id!r}"
            )
        outcome = definitions.reset_leaderboard(
            conn, leaderboard_id, period_start=body.period_start if body else None
        )
    return ResetPublic(
        leaderboard_id=outcome.leaderboard_id,
        archived=outcome.archived,
        current_period_start=outcome.current_start,
        reason=outcome.reason,
    )
