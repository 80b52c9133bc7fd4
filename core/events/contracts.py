"""The ``GameEvent`` v1 contract of ``game.events.v1`` and its dead-letter envelope.

A game server posts an :class:`IncomingGameEvent`; the API stamps the game (from its API
key) and the time it received the event, and produces a :class:`GameEvent`. Each event
type carries its own typed payload (a discriminated union on ``type``). Client clocks
drift, so besides the raw ``occurred_at`` we keep a skew-corrected time computed the way
PostHog and Snowplow do: ``received_at - sent_at + occurred_at``.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, Self, cast, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from core.identity.ids import GAME_ID_PATTERN, PLAYER_ID_PATTERN
from core.platform.clock import DEFAULT_WINDOW, TimeWindow
from core.platform.config import EventSettings

SCHEMA_VERSION: Literal[1] = 1
MAX_BATCH_EVENTS = 1000
MAX_BATCH_BYTES = 1_000_000

LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.:@/#-]{0,127}$"
CURRENCY_PATTERN = r"^[A-Z][A-Z0-9]{2,9}$"

GameId = Annotated[str, Field(pattern=GAME_ID_PATTERN, description="Game slug", examples=["tri"])]
PlayerId = Annotated[
    str,
    Field(
        pattern=PLAYER_ID_PATTERN,
        description="Player id: letters, digits and _ . : @ - (1-128 characters)",
        examples=["player-42"],
    ),
]
Label = Annotated[str, Field(pattern=LABEL_PATTERN, description="A name or id (1-128 chars)")]
# Bounded so that sums over a player's whole history stay far inside BIGINT.
Points = Annotated[int, Field(ge=-(10**12), le=10**12)]


class MatchOutcome(enum.StrEnum):
    win = "win"
    loss = "loss"
    draw = "draw"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class MatchResult(_Payload):
    """A finished match: its outcome for the player, the score reached, the opponent."""

    type: Literal["match_result"] = Field(default="match_result", exclude=True)
    outcome: MatchOutcome
    score: Points
    opponent: PlayerId | None = None
    match_id: Label | None = None


class ScoreReached(_Payload):
    """A score the player reached outside a match (a level, a run, a challenge)."""

    type: Literal["score"] = Field(default="score", exclude=True)
    score: Points
    level: Label | None = None


class Purchase(_Payload):
    """An item bought; ``currency`` is ISO 4217 or a token symbol such as ``STRIDE``."""

    type: Literal["purchase"] = Field(default="purchase", exclude=True)
    item: Label
    price: Annotated[Decimal, Field(ge=0, max_digits=36, decimal_places=18)]
    currency: Annotated[str, Field(pattern=CURRENCY_PATTERN, examples=["STRIDE", "USD"])]


class Achievement(_Payload):
    type: Literal["achievement"] = Field(default="achievement", exclude=True)
    achievement_id: Label
    points: Annotated[int, Field(ge=0, le=10**9)] = 0


class SessionStart(_Payload):
    type: Literal["session_start"] = Field(default="session_start", exclude=True)
    session_id: Label
    platform: Label | None = None


class SessionEnd(_Payload):
    type: Literal["session_end"] = Field(default="session_end", exclude=True)
    session_id: Label
    duration_s: Annotated[float, Field(ge=0, le=7 * 24 * 3600)]


EventPayload = Annotated[
    MatchResult | ScoreReached | Purchase | Achievement | SessionStart | SessionEnd,
    Field(discriminator="type"),
]
EventType = Literal[
    "match_result", "score", "purchase", "achievement", "session_start", "session_end"
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)


def window_from_settings(settings: EventSettings) -> TimeWindow:
    return TimeWindow(
        earliest=datetime.combine(settings.events_earliest_occurred_at, time(), UTC),
        max_ahead=timedelta(seconds=settings.events_max_ahead_s),
    )


class _EventFields(BaseModel):
    """``type`` at the top level selects the payload model (``payload`` omits it on the wire)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID = Field(description="Idempotency key: a retry must reuse it")
    player_id: PlayerId
    type: EventType
    payload: EventPayload
    occurred_at: AwareDatetime = Field(description="When it happened, by the client's clock")
    sent_at: AwareDatetime | None = Field(
        default=None, description="When the client sent it, by the same clock (skew correction)"
    )


def _tag_payload(data: Any) -> Any:
    """The posted shape (``payload`` without ``type``) with the tag the union needs."""
    if isinstance(data, dict) and isinstance(data.get("payload"), dict):
        payload = data["payload"]
        tag = data.get("type")
        if "type" in payload and payload["type"] != tag:
            raise ValueError(f"payload.type {payload['type']!r} contradicts type {tag!r}")
        if tag in EVENT_TYPES:
            data = {**data, "payload": {**payload, "type": tag}}
    return data


class _TypedEvent(_EventFields):
    """Validated from the posted shape: the payload is tagged with ``type`` first (from
    Python objects, so the slower path: ``GameEvent`` is decoded by one model per type)."""

    @model_validator(mode="before")
    @classmethod
    def _tag(cls, data: Any) -> Any:
        return _tag_payload(data)

    @model_validator(mode="after")
    def _payload_matches_type(self) -> _TypedEvent:
        if self.payload.type != self.type:
            raise ValueError(f"payload is a {self.payload.type}, not a {self.type}")
        return self


class PostedEvent(_EventFields):
    """The fields of an event as a game server posts it (``IncomingGameEvent``)."""

    game_id: GameId | None = Field(
        default=None, description="Optional; when given it must be the game of the API key"
    )

    def check(self, game_id: str, received_at: datetime, window: TimeWindow) -> None:
        """Raises ValueError when the event names another game or happened outside
        ``window`` (its skew-corrected time, as the consumers will compute it)."""
        if self.game_id is not None and self.game_id != game_id:
            raise ValueError(
                f"game_id {self.game_id!r} is not the game of this API key ({game_id!r})"
            )
        problem = window.problem(corrected_time(self, received_at), received_at)
        if problem:
            raise ValueError(problem)


class IncomingGameEvent(PostedEvent):
    """One event as a game server posts it to ``POST /v1/events``."""

    @model_validator(mode="before")
    @classmethod
    def _tag(cls, data: Any) -> Any:
        return _tag_payload(data)

    @model_validator(mode="after")
    def _payload_matches_type(self) -> IncomingGameEvent:
        if self.payload.type != self.type:
            raise ValueError(f"payload is a {self.payload.type}, not a {self.type}")
        return self

    def stamp(
        self, game_id: str, received_at: datetime, window: TimeWindow = DEFAULT_WINDOW
    ) -> GameEvent:
        """The event as produced to ``game.events.v1``."""
        self.check(game_id, received_at, window)
        return GameEvent(
            event_id=self.event_id,
            game_id=game_id,
            player_id=self.player_id,
            type=self.type,
            payload=self.payload,
            occurred_at=self.occurred_at,
            sent_at=self.sent_at,
            received_at=received_at,
        )


class GameEvent(_EventFields):
    """``game.events.v1`` value, version 1 (JSON, UTF-8), keyed by ``player_id``.

    Every instance is one of the per-type subclasses below (``MatchResultEvent``, ...),
    whose ``payload`` is that type's model: ``GameEvent(...)``, ``model_validate`` and
    :func:`parse_game_event` pick it by ``type``. One model per type lets pydantic validate
    a Kafka value straight from its JSON bytes, without the Python objects that tagging the
    payload first needs (7.5 against 10.1 µs per event, ``bench/events_decode.py``).
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    game_id: GameId
    received_at: AwareDatetime | None = Field(
        default=None,
        description="Set by the ingest API; producers that bypass it may omit it "
        "(consumers then use the Kafka record timestamp)",
    )

    def __new__(cls, *args: Any, **data: Any) -> Self:
        chosen: type[GameEvent] = cls
        if cls is GameEvent:  # the subclass of the event's type (validated as GameEvent if none)
            chosen = _BY_TYPE.get(data.get("type", ""), cls)
        return cast(Self, super().__new__(chosen))

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        if cls is GameEvent:
            try:
                return cast(Self, _ONE_OF_EACH_TYPE.validate_python(obj, **kwargs))
            except ValidationError:
                _GameEventReasons.model_validate(obj, **kwargs)  # raises the reasons
                raise
        return super().model_validate(obj, **kwargs)

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
        if cls is GameEvent:
            try:
                return cast(Self, _ONE_OF_EACH_TYPE.validate_json(json_data, **kwargs))
            except ValidationError:
                _GameEventReasons.model_validate_json(json_data, **kwargs)  # raises the reasons
                raise
        return super().model_validate_json(json_data, **kwargs)

    def corrected_occurred_at(self, received_at: datetime | None = None) -> datetime:
        """``occurred_at`` moved by the client's clock skew (``received_at - sent_at``)."""
        return corrected_time(self, self.received_at or received_at)

    @property
    def score(self) -> int | None:
        """The score this event reports for leaderboards, if any."""
        if isinstance(self.payload, MatchResult | ScoreReached):
            return self.payload.score
        return None


class MatchResultEvent(GameEvent):
    type: Literal["match_result"]
    payload: MatchResult


class ScoreEvent(GameEvent):
    type: Literal["score"]
    payload: ScoreReached


class PurchaseEvent(GameEvent):
    type: Literal["purchase"]
    payload: Purchase


class AchievementEvent(GameEvent):
    type: Literal["achievement"]
    payload: Achievement


class SessionStartEvent(GameEvent):
    type: Literal["session_start"]
    payload: SessionStart


class SessionEndEvent(GameEvent):
    type: Literal["session_end"]
    payload: SessionEnd


_BY_TYPE: dict[str, type[GameEvent]] = {
    "match_result": MatchResultEvent,
    "score": ScoreEvent,
    "purchase": PurchaseEvent,
    "achievement": AchievementEvent,
    "session_start": SessionStartEvent,
    "session_end": SessionEndEvent,
}
assert set(_BY_TYPE) == set(EVENT_TYPES)
_ONE_OF_EACH_TYPE: TypeAdapter[GameEvent] = TypeAdapter(
    Annotated[
        MatchResultEvent
        | ScoreEvent
        | PurchaseEvent
        | AchievementEvent
        | SessionStartEvent
        | SessionEndEvent,
        Field(discriminator="type"),
    ]
)


class PostedMatchResult(PostedEvent):
    type: Literal["match_result"]
    payload: MatchResult


class PostedScoreReached(PostedEvent):
    type: Literal["score"]
    payload: ScoreReached


class PostedPurchase(PostedEvent):
    type: Literal["purchase"]
    payload: Purchase


class PostedAchievement(PostedEvent):
    type: Literal["achievement"]
    payload: Achievement


class PostedSessionStart(PostedEvent):
    type: Literal["session_start"]
    payload: SessionStart


class PostedSessionEnd(PostedEvent):
    type: Literal["session_end"]
    payload: SessionEnd


# A posted batch whose every event is valid is validated by one model per type (as
# ``GameEvent``), straight from the body's bytes; the per-event path that explains a wrong
# event uses ``IncomingGameEvent``.
PostedOfItsType = Annotated[
    PostedMatchResult
    | PostedScoreReached
    | PostedPurchase
    | PostedAchievement
    | PostedSessionStart
    | PostedSessionEnd,
    Field(discriminator="type"),
]


class _GameEventReasons(_TypedEvent):
    """``GameEvent``'s fields validated the posted way: only to explain, field by field and
    in the words of the posted contract, why a value that none of the types accepts fails."""

    schema_version: Literal[1] = SCHEMA_VERSION
    game_id: GameId
    received_at: AwareDatetime | None = None


def corrected_time(event: _EventFields, received_at: datetime | None) -> datetime:
    """``occurred_at + (received_at - sent_at)``: the client's time moved by its clock's skew."""
    if event.sent_at is None or received_at is None:
        return event.occurred_at
    try:
        return event.occurred_at + (received_at - event.sent_at)
    except OverflowError:  # a "skew" of millennia is no clock's: the client time stands
        return event.occurred_at


def describe_error(error: ValidationError, prefix: str = "") -> str:
    """One line naming each wrong field, e.g. ``payload.match_result.score: ...``."""
    parts = []
    for item in error.errors(include_url=False):
        path = list(item.get("loc", ()))
        if len(path) > 1 and path[0] == "payload" and path[1] in EVENT_TYPES:
            del path[1]  # the union's tag repeats ``type``
        loc = ".".join(str(p) for p in path)
        where = f"{prefix}{loc}" if loc else (prefix.rstrip(".") or "event")
        parts.append(f"{where}: {item.get('msg', 'invalid value')}")
    return "; ".join(parts)


def parse_game_event(raw: bytes, window: TimeWindow = DEFAULT_WINDOW) -> GameEvent:
    """Decode a ``game.events.v1`` value; raises ``ValueError`` with a precise reason, also
    for an event outside ``window`` (producers that bypass the API are held to it too; an
    event without ``received_at`` is judged against the time it is consumed)."""
    try:
        event = GameEvent.model_validate_json(raw)
    except ValidationError as exc:
        raise ValueError(describe_error(exc)) from None
    received = event.received_at or datetime.now(UTC)
    problem = window.problem(event.corrected_occurred_at(received), received)
    if problem:
        raise ValueError(problem)
    return event
