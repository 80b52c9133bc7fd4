"""The ``RewardOutcome`` v1 contract of rewards.outcomes.v1: how a mint or burn ended.

Published by the chain writer once a command is confirmed on chain or has failed, from an
outbox column (``reward_executions.outcome_published_at``), so a crash may publish one
twice but never loses one: consumers dedupe on ``command_id``."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from core.rewards.commands import RewardAction


class RewardOutcome(BaseModel):
    """``rewards.outcomes.v1`` value, version 1 (JSON), keyed by ``player_id``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    command_id: uuid.UUID
    action: RewardAction
    game_id: str
    player_id: str
    status: Literal["confirmed", "failed"]
    reason: str | None
    token: str
    amount: Decimal
    chain_id: int
    wallet: str | None
    tx_hash: str | None
    block_number: int | None
    source_event_id: uuid.UUID
    decided_at: AwareDatetime
