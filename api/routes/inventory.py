"""``/v1/inventory``: what an app user owns in a game (their token: their own inventory,
grants and history), and the game server's view of and spending from a user's inventory
(its game key)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api.auth import APP_USER_ERRORS, GAME_KEY_ERRORS, QUOTA_ERRORS, AppUserDep, GameDep
from api.deps import EngineDep
from api.errors import NOT_JSON, error_responses
from api.routes.catalog_common import (
    IdempotencyKeyHeader,
    Limit,
    RequiredGameId,
    now,
    route_class,
)
from core.content import inventory
from core.content.catalog import CATALOG_ID_PATTERN, CatalogId, Quantity
from core.content.catalog_models import (
    Grant,
    GrantSource,
    InventoryItem,
    InventoryLedger,
    LedgerReason,
    PaymentState,
    UserContent,
)
from core.identity.ids import USER_ID_PATTERN
from core.platform.errors import Invalid

router = APIRouter(prefix="/v1/inventory", tags=["inventory"], route_class=route_class)

UserIdPath = Annotated[str, Path(pattern=USER_ID_PATTERN, description="The app user")]
ItemFilter = Annotated[str | None, Query(pattern=CATALOG_ID_PATTERN, description="Only this item")]
StackCursor = Annotated[
    str | None,
    Query(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}/[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$",
        description="next_after of the page before (item_id/unlocked_by)",
    ),
]


class StackPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    item_id: str
    unlocked_by: str = Field(description="Who paid for or earned these units")
    quantity: int
    acquired_at: datetime


class ContentOwnedPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    content_id: str
    unlocked_by: str
    grant_id: uuid.UUID
    unlocked_at: datetime


class InventoryPublic(BaseModel):
    game_id: str
    owner_id: str
    items: list[StackPublic]
    content: list[ContentOwnedPublic] = Field(description="All of it, on the first page only")
    next_after: str | None


class GrantPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    grant_id: uuid.UUID
    source: GrantSource
    source_id: str
    owner_id: str | None
    unlocked_by: str
    entries: dict[str, Any]
    price_amount: Decimal | None
    price_currency: str | None
    reward_command_id: uuid.UUID | None
    payment_state: PaymentState | None = Field(
        description="awaiting_payment | paid | payment_failed | refund_due | refunding | "
        "refunded (paid in the game token; the items are in the inventory once paid; a paid "
        "grant whose items could not be granted is refunded); null: granted at once"
    )
    payment_reason: str | None
    payment_due_at: datetime | None
    refund_command_id: uuid.UUID | None = Field(
        description="The mint that refunds the price (refunding, refunded)"
    )
    created_at: datetime


class GrantsPublic(BaseModel):
    grants: list[GrantPublic]
    next_before: datetime | None


class LedgerEntryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    entry_id: int
    item_id: str | None
    content_id: str | None
    delta: int
    reason: LedgerReason
    unlocked_by: str
    grant_id: uuid.UUID | None
    gift_id: uuid.UUID | None
    counterparty: str | None
    at: datetime


class HistoryPublic(BaseModel):
    entries: list[LedgerEntryPublic]
    next_after: int | None


class ConsumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: CatalogId
    quantity: Quantity = 1


class ConsumePublic(BaseModel):
    consumed: bool = Field(description="False: this Idempotency-Key was used before")


def _cursor(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    item_id, sep, unlocked_by = value.partition("/")
    if not sep:
        raise Invalid("after: the next_after of the page before (item_id/unlocked_by)")
    return item_id, unlocked_by


def _inventory(
    engine: Any, game_id: str, owner_id: str, item_id: str | None, after: str | None, limit: int
) -> InventoryPublic:
    cursor = _cursor(after)
    with Session(engine) as session:
        stacks: list[InventoryItem] = inventory.inventory_of(
            session, game_id, owner_id, item_id=item_id, after=cursor, limit=limit
        )
        content: list[UserContent] = (
            inventory.content_of(session, game_id, owner_id) if cursor is None else []
        )
        last = stacks[-1] if len(stacks) == limit else None
        return InventoryPublic(
            game_id=game_id,
            owner_id=owner_id,
            items=[StackPublic.model_validate(s) for s in stacks],
            content=[ContentOwnedPublic.model_validate(c) for c in content],
            next_after=f"{last.item_id}/{last.unlocked_by}" if last else None,
        )


@router.get(
    "",
    response_model=InventoryPublic,
    summary="Your inventory in a game: item stacks per unlocker, and content (app user)",
    responses={**APP_USER_ERRORS},
)
def my_inventory(
    user_id: AppUserDep,
    engine: EngineDep,
    game_id: RequiredGameId,
    item_id: ItemFilter = None,
    after: StackCursor = None,
    limit: Limit = 100,
) -> InventoryPublic:
    return _inventory(engine, game_id, user_id, item_id, after, limit)


@router.get(
    "/grants",
    response_model=GrantsPublic,
    summary="Grants you received or paid for in a game, newest first (app user)",
    responses={**APP_USER_ERRORS},
)
def my_grants(
    user_id: AppUserDep,
    engine: EngineDep,
    game_id: RequiredGameId,
    before: Annotated[datetime | None, Query(description="next_before of the page before")] = None,
    limit: Limit = 50,
) -> GrantsPublic:
    with Session(engine) as session:
        rows: list[Grant] = inventory.grants_of(
            session, game_id, user_id, before=before, limit=limit
        )
        return GrantsPublic(
            grants=[GrantPublic.model_validate(g) for g in rows],
            next_before=rows[-1].created_at if len(rows) == limit else None,
        )


@router.get(
    "/history",
    response_model=HistoryPublic,
    summary="Every change of your inventory in a game, oldest first: the provenance (app user)",
    responses={**APP_USER_ERRORS},
)
def my_history(
    user_id: AppUserDep,
    engine: EngineDep,
    game_id: RequiredGameId,
    item_id: ItemFilter = None,
    after: Annotated[int | None, Query(ge=0, description="next_after of the page before")] = None,
    limit: Limit = 100,
) -> HistoryPublic:
    with Session(engine) as session:
        rows: list[InventoryLedger] = inventory.history_of(
            session, game_id, user_id, item_id=item_id, after=after, limit=limit
        )
        return HistoryPublic(
            entries=[LedgerEntryPublic.model_validate(e) for e in rows],
            next_after=rows[-1].entry_id if len(rows) == limit else None,
        )


@router.get(
    "/users/{user_id}",
    response_model=InventoryPublic,
    summary="An app user's inventory in your game (game key)",
    responses={**GAME_KEY_ERRORS},
)
def user_inventory(
    user_id: UserIdPath,
    game_id: GameDep,
    engine: EngineDep,
    item_id: ItemFilter = None,
    after: StackCursor = None,
    limit: Limit = 100,
) -> InventoryPublic:
    return _inventory(engine, game_id, user_id, item_id, after, limit)


@router.post(
    "/users/{user_id}/consume",
    response_model=ConsumePublic,
    summary="Spend units of a consumable item of a user (game key); once per Idempotency-Key",
    responses={
        **GAME_KEY_ERRORS,
        **QUOTA_ERRORS,
        **NOT_JSON,
        **error_responses(
            {
                404: "No such item in this game",
                409: "The user owns fewer units (not_enough_items)",
            }
        ),
    },
)
def consume(
    user_id: UserIdPath,
    body: ConsumeRequest,
    game_id: GameDep,
    key: IdempotencyKeyHeader,
    engine: EngineDep,
) -> ConsumePublic:
    with Session(engine) as session, session.begin():
        done = inventory.consume(session, game_id, user_id, body.item_id, body.quantity, key, now())
    return ConsumePublic(consumed=done)
