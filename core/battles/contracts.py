"""The ``BattleRequest`` v1 contract of ``battles.requests.v1`` and the posted battle.

A game server posts an :class:`IncomingBattle`; the API stamps the game (from its key), the
battle id and the time, and produces a :class:`BattleRequest` keyed by its game
(:meth:`BattleRequest.record_key`). The battle id is derived from the client's idempotency
key when one is sent (a retry names the same battle), else it is new.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.events.contracts import GameId, Label, PlayerId, describe_error

SCHEMA_VERSION: Literal[1] = 1
MAX_SIDES = 16
MAX_SIDE_PLAYERS = 16
# Battle ids derived from (game, idempotency key) live in this namespace (uuid5).
BATTLE_ID_NAMESPACE = uuid.UUID("0b5e7c1e-6a43-4d0f-9a57-8a1d6c0e2b16")

Side = Annotated[
    list[PlayerId],
    Field(min_length=1, max_length=MAX_SIDE_PLAYERS, description="One player or a team"),
]
Mode = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", examples=["duel"])]


class _Battle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Field(description="The game's mode (a slug): ratings are per game, not mode")
    sides: list[Side] = Field(
        min_length=2,
        max_length=MAX_SIDES,
        description="Two or more sides, each one player or a team; a player is on one side",
    )

    @model_validator(mode="after")
    def _players_once(self) -> _Battle:
        seen: set[str] = set()
        for side in self.sides:
            for player in side:
                if player in seen:
                    raise ValueError(f"player {player!r} is named more than once")
                seen.add(player)
        return self


class IncomingBattle(_Battle):
    """A battle as a game server posts it to ``POST /v1/battles``."""

    idempotency_key: Label | None = Field(
        default=None,
        description="Optional: a retry with the same key names the same battle (and is "
        "refused with 409 if it differs)",
    )

    def battle_id(self, game_id: str) -> uuid.UUID:
        if self.idempotency_key is None:
            return uuid.uuid4()
        return uuid.uuid5(BATTLE_ID_NAMESPACE, f"{game_id}/{self.idempotency_key}")

    def stamp(self, game_id: str, battle_id: uuid.UUID, requested_at: datetime) -> BattleRequest:
        return BattleRequest(
            battle_id=battle_id,
            game_id=game_id,
            mode=self.mode,
            sides=self.sides,
            requested_at=requested_at,
        )


class BattleRequest(_Battle):
    """``battles.requests.v1`` value, version 1 (JSON, UTF-8), keyed by ``game_id``."""

    schema_version: Literal[1] = SCHEMA_VERSION
    battle_id: uuid.UUID
    game_id: GameId
    requested_at: AwareDatetime

    @property
    def players(self) -> list[str]:
        return [player for side in self.sides for player in side]

    def record_key(self) -> bytes:
        """The Kafka key every producer of ``battles.requests.v1`` uses: the game id. A
        game's battles share one partition, so one engine process owns a game's players:
        two engine batches never lock the same players (keyed by battle id, every batch of
        one process overlapped a batch of the other and they ran one after the other), and
        a player's battles are rated in the order they were queued."""
        return self.game_id.encode()


def parse_battle_request(raw: bytes) -> BattleRequest:
    """Decode a ``battles.requests.v1`` value; ``ValueError`` names each wrong field."""
    try:
        return BattleRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise ValueError(describe_error(exc, "battle.")) from None
