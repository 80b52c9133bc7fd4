"""``/v1/gifts``: an app user offers units of a giftable item to another user, who accepts
or declines; the sender may cancel; an offer expires. The units wait in escrow meanwhile
(see core/content/gifts.py); every move is in both users' inventory history."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api.auth import APP_USER_ERRORS, QUOTA_ERRORS, AppUserDep
from api.deps import EngineDep
from api.errors import NOT_JSON, error_responses
from api.routes.catalog_common import IdempotencyKeyHeader, Limit, RequiredGameId, now, route_class
from core.content import gifts
from core.content.catalog import TEXT_PATTERN, CatalogId, Quantity
from core.content.catalog_models import Gift, GiftStatus
from core.identity.ids import GAME_ID_PATTERN, USER_ID_PATTERN

GIFT_TTL = timedelta(days=7)

router = APIRouter(prefix="/v1/gifts", tags=["gifts"], route_class=route_class)

GiftIdPath = Annotated[uuid.UUID, Path(description="The gift's id")]


class GiftRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    game_id: str = Field(pattern=GAME_ID_PATTERN)
    recipient_user_id: str = Field(pattern=USER_ID_PATTERN)
    item_id: CatalogId
    quantity: Quantity = 1
    message: str = Field(default="", max_length=280, pattern=TEXT_PATTERN)


class EscrowPart(BaseModel):
    unlocked_by: str
    quantity: int


class GiftPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    gift_id: uuid.UUID
    game_id: str
    sender_id: str
    recipient_id: str
    item_id: str
    quantity: int
    escrow: list[EscrowPart] = Field(description="The units and who first unlocked them")
    message: str
    status: GiftStatus
    offered_at: datetime
    expires_at: datetime
    decided_at: datetime | None


class GiftOfferPublic(GiftPublic):
    created: bool = Field(description="False: this Idempotency-Key was used before")


class GiftsPublic(BaseModel):
    gifts: list[GiftPublic]
    next_before: datetime | None


GIFT_ERRORS = {
    **APP_USER_ERRORS,
    **QUOTA_ERRORS,
    **error_responses(
        {
            403: "Not your gift to accept, decline or cancel (not_your_gift)",
            404: "No such gift of yours (gift_not_found)",
            409: "The gift is no longer offered (gift_closed), or accepting it would pass "
            "the item's max count (max_count_reached)",
        }
    ),
}


@router.post(
    "",
    status_code=201,
    response_model=GiftOfferPublic,
    summary="Offer units of a giftable item to another user (app user); once per key",
    responses={
        **APP_USER_ERRORS,
        **QUOTA_ERRORS,
        **NOT_JSON,
        200: {"description": "The key was used before: that gift"},
        **error_responses(
            {
                404: "No such item, or the recipient is no active app user",
                409: "You own fewer units (not_enough_items), or the key was used for "
                "another gift (idempotency_key_reused)",
            }
        ),
    },
)
def offer_gift(
    body: GiftRequest,
    user_id: AppUserDep,
    key: IdempotencyKeyHeader,
    engine: EngineDep,
    response: Response,
) -> GiftOfferPublic:
    request = gifts.GiftOffer(
        game_id=body.game_id,
        sender_id=user_id,
        recipient_id=body.recipient_user_id,
        item_id=body.item_id,
        quantity=body.quantity,
        idempotency_key=key,
        message=body.message,
    )
    with Session(engine) as session, session.begin():
        gift, created = gifts.offer(session, request, ttl=GIFT_TTL, now=now())
        public = GiftOfferPublic(**GiftPublic.model_validate(gift).model_dump(), created=created)
    response.status_code = 201 if created else 200
    return public


@router.get(
    "",
    response_model=GiftsPublic,
    summary="Gifts you received (or sent) in a game, newest first (app user)",
    responses={**APP_USER_ERRORS},
)
def list_gifts(
    user_id: AppUserDep,
    engine: EngineDep,
    game_id: RequiredGameId,
    direction: Annotated[Literal["received", "sent"], Query()] = "received",
    status: Annotated[GiftStatus | None, Query(description="Only gifts in this state")] = None,
    before: Annotated[datetime | None, Query(description="next_before of the page before")] = None,
    limit: Limit = 50,
) -> GiftsPublic:
    with Session(engine) as session:
        rows: list[Gift] = gifts.gifts_of(
            session,
            game_id,
            user_id,
            direction=direction,
            status=status,
            before=before,
            limit=limit,
        )
        return GiftsPublic(
            gifts=[GiftPublic.model_validate(g) for g in rows],
            next_before=rows[-1].offered_at if len(rows) == limit else None,
        )


@router.get(
    "/{gift_id}",
    response_model=GiftPublic,
    summary="One gift you sent or received (app user)",
    responses={**APP_USER_ERRORS, **error_responses({404: "No such gift of yours"})},
)
def get_gift(gift_id: GiftIdPath, user_id: AppUserDep, engine: EngineDep) -> GiftPublic:
    with Session(engine) as session:
        return GiftPublic.model_validate(gifts.get_gift(session, gift_id, user_id))


def _decide(engine: Any, action: Any, gift_id: uuid.UUID, user_id: str) -> GiftPublic:
    with Session(engine) as session, session.begin():
        return GiftPublic.model_validate(action(session, gift_id, user_id, now()))


@router.post(
    "/{gift_id}/accept",
    response_model=GiftPublic,
    summary="Accept a gift offered to you: the units join your inventory (app user)",
    responses=GIFT_ERRORS,
)
def accept_gift(gift_id: GiftIdPath, user_id: AppUserDep, engine: EngineDep) -> GiftPublic:
    return _decide(engine, gifts.accept, gift_id, user_id)


@router.post(
    "/{gift_id}/decline",
    response_model=GiftPublic,
    summary="Decline a gift offered to you: the units go back to the sender (app user)",
    responses=GIFT_ERRORS,
)
def decline_gift(gift_id: GiftIdPath, user_id: AppUserDep, engine: EngineDep) -> GiftPublic:
    return _decide(engine, gifts.decline, gift_id, user_id)


@router.post(
    "/{gift_id}/cancel",
    response_model=GiftPublic,
    summary="Cancel a gift you offered that is still open: the units come back (app user)",
    responses=GIFT_ERRORS,
)
def cancel_gift(gift_id: GiftIdPath, user_id: AppUserDep, engine: EngineDep) -> GiftPublic:
    return _decide(engine, gifts.cancel, gift_id, user_id)
