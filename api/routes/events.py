"""``POST /v1/events`` and ``POST /v1/events/batch``: game servers send events to Kafka.

Each request is authenticated by its game's ``X-Api-Key``. Valid events are stamped with
the game and the receive time and produced to ``game.events.v1`` keyed by player; the 202
answer counts them only after the broker acknowledged every one (acks=all). Invalid events
of a batch are listed by index with the reason; the valid ones are still accepted.

CPU per event matters here (the API shares a small machine with the broker and the worker):
a body is validated in one pass from its bytes, and a valid event's Kafka value is written
from the validated event without building and validating a second model. A body that does
not validate whole takes the slower per-event path, which names each wrong event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field, ValidationError
from pydantic_core import from_json, to_json

from api.auth import GAME_KEY_ERRORS, QUOTA_ERRORS, GameDep
from api.body import read_body
from api.deps import SettingsDep
from api.errors import error_responses
from api.kafka import KAFKA_ERRORS, ProducerDep
from core.events.contracts import (
    DEFAULT_WINDOW,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    SCHEMA_VERSION,
    IncomingGameEvent,
    PostedEvent,
    PostedOfItsType,
    TimeWindow,
    describe_error,
    window_from_settings,
)
from core.platform.topics import GAME_EVENTS

router = APIRouter(prefix="/v1", tags=["events"])

MAX_EVENT_BYTES = 64 * 1024
TOO_LARGE_ADVICE = "split it into smaller batches"
RETRY = "Nothing from this request was accepted: retry it unchanged (event ids make retries safe)."


class RejectedEvent(BaseModel):
    index: int = Field(description="Position of the event in the posted list (0-based)")
    event_id: str | None = Field(description="Its event_id when one could be read")
    reason: str = Field(description="What was wrong, field by field")


class IngestResult(BaseModel):
    accepted: int = Field(description="Events written to Kafka (acks=all)")
    rejected: list[RejectedEvent] = Field(description="Events not accepted, with reasons")


_ERRORS = {
    **GAME_KEY_ERRORS,
    **QUOTA_ERRORS,
    **error_responses(
        {
            413: "Body or event count over the limit",
            422: "Body is not the documented JSON",
        }
    ),
    **KAFKA_ERRORS,
}


def _json(body: bytes) -> Any:
    """The body as Python values; pydantic-core's parser also refuses nesting deeper than
    its recursion limit (where ``json.loads`` would raise RecursionError, a 500)."""
    try:
        return from_json(body)
    except ValueError as exc:
        raise HTTPException(422, f"body is not valid JSON: {exc}") from None


Record = tuple[bytes, bytes]


class _PostedBatch(BaseModel):
    events: list[PostedOfItsType]


_NOT_IN_VALUE = {"game_id"}  # the key's game_id is written by the tail instead


class Stamper:
    """Turns valid posted events into ``game.events.v1`` records (player id, value).

    The value is ``event.stamp(game_id, received_at).model_dump_json()`` byte for byte, but
    spliced: a ``GameEvent`` serialises the posted event's fields in the same order, then
    ``schema_version``, ``game_id`` and ``received_at``, which are the same for the whole
    request. This skips a second validation of every field (tests pin the equality).
    """

    def __init__(
        self, game_id: str, received_at: datetime, window: TimeWindow = DEFAULT_WINDOW
    ) -> None:
        self.game_id = game_id
        self.received_at = received_at
        self.window = window
        self._tail = (
            b',"schema_version":'
            + to_json(SCHEMA_VERSION)
            + b',"game_id":'
            + to_json(game_id)
            + b',"received_at":'
            + to_json(received_at)
            + b"}"
        )

    def record(self, event: PostedEvent) -> Record:
        """Raises ValueError (as ``stamp``) when the event names another game or happened
        outside the plausible time window."""
        event.check(self.game_id, self.received_at, self.window)
        # model_dump_json, as bytes (an IncomingGameEvent, or the posted model of its type)
        head = event.__pydantic_serializer__.to_json(event, exclude=_NOT_IN_VALUE)
        return event.player_id.encode(), head[:-1] + self._tail


def _record(item: Any, stamper: Stamper) -> Record:
    """Validate one posted event; raises ValueError with a field-by-field reason."""
    try:
        return stamper.record(IncomingGameEvent.model_validate(item))
    except ValidationError as exc:
        raise ValueError(describe_error(exc)) from None


def _valid_batch(body: bytes, stamper: Stamper) -> list[Record] | None:
    """The records of a body whose every event is valid; None when any is not (or when the
    body is no such batch), so that the per-event path explains what is wrong."""
    try:
        events = _PostedBatch.model_validate_json(body).events
    except ValidationError:
        return None
    if not events or len(events) > MAX_BATCH_EVENTS:
        return None
    try:
        return [stamper.record(event) for event in events]
    except ValueError:
        return None


def _inlined_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with ``$defs`` references inlined (valid inside OpenAPI)."""
    schema = model.model_json_schema(mode="validation")
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)


# Works as shown in /docs with any game's key: no game_id (the key says which game it is).
EXAMPLE_EVENT = {
    "event_id": "6f1c1f7e-3d0e-4b8e-9c39-2f0f9a3c1a11",
    "player_id": "player-42",
    "type": "match_result",
    "payload": {"outcome": "win", "score": 120},
    "occurred_at": "2026-12-01T10:00:00Z",
}
DEDUPE_NOTE = (
    " `event_id` is the idempotency key: an event posted again with the same id (a retry) is "
    "accepted and counted once; use a new UUID for each new event."
)


def _body(schema: dict[str, Any], example: Any) -> dict[str, Any]:
    content = {"application/json": {"schema": schema, "example": example}}
    return {"requestBody": {"required": True, "content": content}}


@router.post(
    "/events",
    status_code=202,
    response_model=IngestResult,
    summary="Send one game event",
    responses=_ERRORS,
    description="One event of the game whose X-Api-Key is sent." + DEDUPE_NOTE,
    openapi_extra=_body(_inlined_schema(IncomingGameEvent), EXAMPLE_EVENT),
)
async def post_event(
    request: Request, game_id: GameDep, producer: ProducerDep, settings: SettingsDep
) -> IngestResult:
    stamper = Stamper(game_id, datetime.now(UTC), window_from_settings(settings))
    body = await read_body(request, MAX_EVENT_BYTES, TOO_LARGE_ADVICE)
    try:
        record = stamper.record(IncomingGameEvent.model_validate_json(body))
    except ValueError:  # ValidationError included
        try:  # again from the parsed JSON: the answers name the problem as they always did
            record = _record(_json(body), stamper)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
    await producer.produce(GAME_EVENTS, [record], retry=RETRY)
    return IngestResult(accepted=1, rejected=[])


_BATCH_SCHEMA = {
    "type": "object",
    "required": ["events"],
    "properties": {
        "events": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BATCH_EVENTS,
            "items": _inlined_schema(IncomingGameEvent),
        }
    },
}


@router.post(
    "/events/batch",
    status_code=202,
    response_model=IngestResult,
    summary=f"Send up to {MAX_BATCH_EVENTS} game events ({MAX_BATCH_BYTES} bytes)",
    description="Valid events are accepted even when others are not; each rejected event is "
    "listed with its index and the reason. Retrying with the same event ids never counts twice.",
    responses=_ERRORS,
    openapi_extra=_body(_BATCH_SCHEMA, {"events": [EXAMPLE_EVENT]}),
)
async def post_events(
    request: Request, game_id: GameDep, producer: ProducerDep, settings: SettingsDep
) -> IngestResult:
    stamper = Stamper(game_id, datetime.now(UTC), window_from_settings(settings))
    raw = await read_body(request, MAX_BATCH_BYTES, TOO_LARGE_ADVICE)
    records = _valid_batch(raw, stamper)
    if records is not None:
        await producer.produce(GAME_EVENTS, records, retry=RETRY)
        return IngestResult(accepted=len(records), rejected=[])
    body = _json(raw)
    items = body.get("events") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise HTTPException(422, 'body must be {"events": [...]} with at least one event')
    if len(items) > MAX_BATCH_EVENTS:
        raise HTTPException(
            413, f"{len(items)} events in one batch; the limit is {MAX_BATCH_EVENTS}"
        )
    accepted: list[Record] = []
    rejected: list[RejectedEvent] = []
    for index, item in enumerate(items):
        try:
            accepted.append(_record(item, stamper))
        except ValueError as exc:
            event_id = item.get("event_id") if isinstance(item, dict) else None
            rejected.append(
                RejectedEvent(
                    index=index,
                    event_id=event_id if isinstance(event_id, str) else None,
                    reason=str(exc),
                )
            )
    if accepted:
        await producer.produce(GAME_EVENTS, accepted, retry=RETRY)
    return IngestResult(accepted=len(accepted), rejected=rejected)
