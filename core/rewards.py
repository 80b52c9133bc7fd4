"""Play-to-earn reward rules (pure) and the ``RewardCommand`` v1 contract of rewards.commands.v1.

A won match mints the game token to the player; a purchase paid in the game token burns
what was paid. Amounts come from :class:`RewardRules` (settings). Each command's id is
derived from the event id and the action, so a replayed event yields the same command and
consumers can dedupe on ``command_id``.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from core.config import Settings
from core.events import (
    CURRENCY_PATTERN,
    Achievement,
    GameEvent,
    GameId,
    MatchOutcome,
    MatchResult,
    PlayerId,
    Purchase,
)

# Fixed namespace: command ids must never change for a given event and action.
REWARD_COMMAND_NAMESPACE = uuid.UUID("6f1c1e0a-5b8e-4f3e-9c53-0d2a7f1b9e42")

Amount = Annotated[Decimal, Field(gt=0, max_digits=36, decimal_places=18)]


class RewardAction(enum.StrEnum):
    mint = "mint"
    burn = "burn"


class RewardStatus(enum.StrEnum):
    pending = "pending"
    submitted = "submitted"
    confirmed = "confirmed"
    failed = "failed"


class RewardRules(BaseModel):
    """How much of the game token each kind of event earns or costs (0 disables a rule)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: Annotated[str, Field(pattern=CURRENCY_PATTERN)] = "STRIDE"  # noqa: S105 - a token symbol, not a secret
    mint_per_win: Annotated[Decimal, Field(ge=0)] = Decimal("10")
    mint_per_draw: Annotated[Decimal, Field(ge=0)] = Decimal("0")
    mint_per_achievement_point: Annotated[Decimal, Field(ge=0)] = Decimal("0")
    burn_token_purchases: bool = True


class RewardCommand(BaseModel):
    """``rewards.commands.v1`` value, version 1 (JSON), keyed by ``player_id``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    command_id: uuid.UUID = Field(description="Idempotency key, derived from the source event")
    action: RewardAction
    game_id: GameId
    player_id: PlayerId
    token: str
    amount: Amount
    reason: str
    source_event_id: uuid.UUID
    issued_at: AwareDatetime


def command_id_for(event_id: uuid.UUID, action: RewardAction) -> uuid.UUID:
    return uuid.uuid5(REWARD_COMMAND_NAMESPACE, f"{event_id}:{action.value}")


def reward_commands_for(
    event: GameEvent, rules: RewardRules, issued_at: datetime
) -> list[RewardCommand]:
    """The commands an event earns under ``rules`` (none for most events)."""
    payload = event.payload
    mint: tuple[Decimal, str] | None = None
    burn: tuple[Decimal, str] | None = None
    if isinstance(payload, MatchResult):
        if payload.outcome is MatchOutcome.win:
            mint = (rules.mint_per_win, "match_won")
        elif payload.outcome is MatchOutcome.draw:
            mint = (rules.mint_per_draw, "match_drawn")
    elif isinstance(payload, Achievement):
        amount = rules.mint_per_achievement_point * payload.points
        mint = (amount, f"achievement:{payload.achievement_id}")
    elif (
        isinstance(payload, Purchase)
        and rules.burn_token_purchases
        and payload.currency == rules.token
    ):
        burn = (payload.price, f"purchase:{payload.item}")

    commands = []
    for action, rule in ((RewardAction.mint, mint), (RewardAction.burn, burn)):
        if rule is None or rule[0] <= 0:
            continue
        commands.append(
            RewardCommand(
                command_id=command_id_for(event.event_id, action),
                action=action,
                game_id=event.game_id,
                player_id=event.player_id,
                token=rules.token,
                amount=rule[0],
                reason=rule[1][:128],
                source_event_id=event.event_id,
                issued_at=issued_at,
            )
        )
    return commands


def rules_from_settings(settings: Settings) -> RewardRules:
    return RewardRules(
        token=settings.reward_token,
        mint_per_win=settings.reward_mint_per_win,
        mint_per_draw=settings.reward_mint_per_draw,
        mint_per_achievement_point=settings.reward_mint_per_achievement_point,
    )
