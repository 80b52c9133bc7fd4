"""Play-to-earn reward rules (pure) and the ``RewardCommand`` v1 contract of rewards.commands.v1.

A won match mints the game token to the player; a purchase paid in the game token burns
what was paid. Amounts come from :class:`RewardRules` (settings). Each command's id is
derived from the event id and the action, so a replayed event yields the same command and
consumers can dedupe on ``command_id``.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from core.events.contracts import (
    CURRENCY_PATTERN,
    Achievement,
    GameEvent,
    GameId,
    MatchOutcome,
    MatchResult,
    PlayerId,
    Purchase,
)
from core.platform.config import Settings

# Fixed namespace: command ids must never change for a given event and action.
REWARD_COMMAND_NAMESPACE = uuid.UUID("6f1c1e0a-5b8e-4f3e-9c53-0d2a7f1b9e42")

Amount = Annotated[Decimal, Field(gt=0, max_digits=36, decimal_places=18)]
# A rule's fixed amount is a valid Amount once it is above 0, so events never need to check it.
RuleAmount = Annotated[Decimal, Field(ge=0, max_digits=36, decimal_places=18)]
_AMOUNT: TypeAdapter[Decimal] = TypeAdapter(Amount)


class RewardAction(enum.StrEnum):
    mint = "mint"
    burn = "burn"


class RewardStatus(enum.StrEnum):
    """Where a command is (``core.rewards.states`` holds the allowed transitions)."""

    pending = "pending"  # issued, not looked at by the chain writer yet
    awaiting_wallet = "awaiting_wallet"  # the player has no linked user or primary wallet
    needs_authorization = "needs_authorization"  # a burn without the holder's permit
    queued = "queued"  # ready to send: recipient (and permit) known
    submitted = "submitted"  # in a signed transaction recorded in chain_txs
    confirmed = "confirmed"  # mined with enough confirmations (or paid by an earlier tx)
    failed = "failed"  # refused for a reason that a retry alone would not fix


class RewardRules(BaseModel):
    """How much of the game token each kind of event earns or costs (0 disables a rule)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: Annotated[str, Field(pattern=CURRENCY_PATTERN)] = "STRIDE"  # noqa: S105 - a token symbol, not a secret
    mint_per_win: RuleAmount = Decimal("10")
    mint_per_draw: RuleAmount = Decimal("0")
    # Times at most 10**9 points (10 digits): the product is always a valid Amount, so a
    # setting can never make an achievement event fail in the worker.
    mint_per_achievement_point: Annotated[
        Decimal, Field(ge=0, max_digits=26, decimal_places=18)
    ] = Decimal("0")
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


# uuid5 hashes the namespace then the name: hash the namespace once, copy it per id.
_NAMESPACE_SHA1 = hashlib.sha1(REWARD_COMMAND_NAMESPACE.bytes, usedforsecurity=False)


def command_id_for(game_id: str, event_id: uuid.UUID, action: RewardAction) -> uuid.UUID:
    """``uuid5(REWARD_COMMAND_NAMESPACE, f"{game_id}:{event_id}:{action}")``, hashing the
    namespace once. The game is part of it because event ids are unique per game only.

    (Commands issued before event ids were scoped per game were derived without the game;
    they keep their ids: an event already applied is a duplicate and issues nothing new.)"""
    sha1 = _NAMESPACE_SHA1.copy()
    sha1.update(f"{game_id}:{event_id}:{action.value}".encode())
    return uuid.UUID(bytes=sha1.digest()[:16], version=5)


def _rule_for(event: GameEvent, rules: RewardRules) -> tuple[RewardAction, Decimal, str] | None:
    """The one rule an event falls under, if any: its action, amount (maybe 0) and reason."""
    payload = event.payload
    if isinstance(payload, MatchResult):
        if payload.outcome is MatchOutcome.win:
            return RewardAction.mint, rules.mint_per_win, "match_won"
        if payload.outcome is MatchOutcome.draw:
            return RewardAction.mint, rules.mint_per_draw, "match_drawn"
    elif isinstance(payload, Achievement):
        amount = rules.mint_per_achievement_point * payload.points
        if amount > 0:
            # A product: the only amount not bounded by a validated rule or payload.
            amount = _AMOUNT.validate_python(amount)
        return RewardAction.mint, amount, f"achievement:{payload.achievement_id}"
    elif (
        isinstance(payload, Purchase)
        and rules.burn_token_purchases
        and payload.currency == rules.token
    ):
        return RewardAction.burn, payload.price, f"purchase:{payload.item}"
    return None


def reward_commands_for(
    event: GameEvent, rules: RewardRules, issued_at: datetime
) -> list[RewardCommand]:
    """The commands an event earns under ``rules`` (none for most events, never two)."""
    rule = _rule_for(event, rules)
    if rule is None or rule[1] <= 0:
        return []
    action, amount, reason = rule
    return [
        RewardCommand(
            command_id=command_id_for(event.game_id, event.event_id, action),
            action=action,
            game_id=event.game_id,
            player_id=event.player_id,
            token=rules.token,
            amount=amount,
            reason=reason[:128],
            source_event_id=event.event_id,
            issued_at=issued_at,
        )
    ]


def rules_from_settings(settings: Settings) -> RewardRules:
    return RewardRules(
        token=settings.reward_token,
        mint_per_win=settings.reward_mint_per_win,
        mint_per_draw=settings.reward_mint_per_draw,
        mint_per_achievement_point=settings.reward_mint_per_achievement_point,
    )
