"""``POST /v1/get_score``: compute a score with the core formula and log it.

Callers identify themselves (every call writes a ``score_log`` row): a game server with its
``X-Api-Key`` (for any of its players), or the app with the signed-in user's bearer token
(for that user only). The request and response bodies are the seed's."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import CALLER_ERRORS, QUOTA_ERRORS, CallerDep
from api.body import limited_body_route
from api.deps import EngineDep, RequestIdDep
from api.errors import INVALID, NOT_JSON, error_responses
from core.identity.ids import USER_ID_PATTERN
from core.scores.formula import compute_score
from core.scores.group_log import record_score_grouped

MAX_SCORE_BODY_BYTES = 16 * 1024  # {user_id, input} is under 200 bytes of JSON
router = APIRouter(
    prefix="/v1",
    tags=["scores"],
    route_class=limited_body_route(
        lambda _settings: MAX_SCORE_BODY_BYTES, 'send one {"user_id", "input"} object'
    ),
)


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    user_id: str = Field(
        min_length=1,
        max_length=128,
        pattern=USER_ID_PATTERN,
        description="Player or app user id: letters, digits and _ . : @ - (1-128 characters).",
        examples=["player-42"],
    )
    # strict: a JSON number only; true or "1e3" would otherwise be scored as 1.0 and 1000.0
    input: float = Field(
        ge=-1e15,
        le=1e15,
        strict=True,
        description="The number to score (a finite JSON number).",
        examples=[42.5],
    )


class ScorePublic(BaseModel):
    user_id: str
    input: float
    score: float = Field(description="1000 * tanh(input / 100), rounded to 4 decimals")
    log_id: int = Field(description="Primary key of the row written to score_log")
    computed_at: datetime
    request_id: uuid.UUID


@router.post(
    "/get_score",
    response_model=ScorePublic,
    summary="Score one input and log it",
    responses={
        **CALLER_ERRORS,
        **QUOTA_ERRORS,
        **NOT_JSON,
        **error_responses(
            {
                400: "X-Request-ID is not a UUID (it is what makes a retry answer the first call)",
                413: "The body is over the size limit",
            }
        ),
        **INVALID,
    },
)
async def get_score(
    body: ScoreRequest,
    caller: CallerDep,
    engine: EngineDep,
    request_id: RequestIdDep,
    x_request_id: Annotated[
        str | None,
        Header(
            description="A UUID: the same id sent again answers the first call's result",
            max_length=64,
        ),
    ] = None,
) -> Response:
    if x_request_id is not None and str(request_id) != _uuid_text(x_request_id):
        # The platform would otherwise answer under an id of its own: the client's retry
        # would log a second call instead of answering the first.
        raise HTTPException(
            400,
            "X-Request-ID must be a UUID, so that a retry answers the first call;"
            f" got {x_request_id[:64]!r}",
        )
    if not caller.may_act_for(body.user_id):
        raise HTTPException(
            403,
            f"user_id {body.user_id!r} is not the token's user: a user scores only for themself",
        )
    score = compute_score(body.input)
    entry = await record_score_grouped(
        engine,
        request_id=uuid.UUID(request_id),
        user_id=body.user_id,
        value=body.input,
        score=score,
    )
    # Every field comes from the validated request or the stored row: serialized once,
    # without FastAPI validating the return value against response_model a second time.
    public = ScorePublic.model_construct(
        user_id=entry.user_id,
        input=entry.input,
        score=entry.score,
        log_id=entry.log_id,
        computed_at=entry.computed_at,
        request_id=entry.request_id,
    )
    return Response(public.model_dump_json(), media_type="application/json")


def _uuid_text(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
