"""Packs and their purchase, in two versions served from the same rows: ``/v2/catalog/packs``
and ``/v1/catalog/packs`` (deprecated: ``Deprecation``, ``Sunset`` and a ``Link`` to the
successor on every answer).

The breaking change: v1's ``price`` (a decimal) and ``currency`` became v2's
``price: {amount, currency}``, and the gifting fields were renamed (v1 ``gift_allowed`` →
v2 ``giftable``; the purchase's ``gift_to`` → ``recipient_user_id``). Both versions map
onto one domain spec (:class:`core.content.catalog.PackSpec`), so a pack written through
either reads the same through both. docs/content.md walks through the rollout.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api.auth import (
    APP_USER_ERRORS,
    CALLER_ERRORS,
    GAME_KEY_ERRORS,
    QUOTA_ERRORS,
    AppUserDep,
    CallerDep,
    GameDep,
)
from api.deps import EngineDep, SettingsDep, per_app
from api.errors import NOT_JSON, error_responses
from api.etags import IfMatchHeader, IfNoneMatch, not_modified, precondition, set_etag
from api.routes.catalog_common import (
    CONFLICT,
    NOT_FOUND,
    STALE,
    DeprecatedRoute,
    GameIdQuery,
    IdempotencyKeyHeader,
    Limit,
    game_of,
    now,
    route_class,
)
from core.content import catalog, inventory
from core.content.catalog import (
    CATALOG_ID_PATTERN,
    CatalogId,
    Description,
    ItemQuantity,
    Name,
    PackSpec,
    Price,
    TokenAmount,
)
from core.content.catalog_models import CatalogPack, Grant, PaymentState
from core.events.contracts import CURRENCY_PATTERN
from core.identity.ids import GAME_ID_PATTERN, USER_ID_PATTERN
from core.rewards.commands import RewardStatus

v2 = APIRouter(prefix="/v2/catalog/packs", tags=["packs"], route_class=route_class)
v1 = APIRouter(
    prefix="/v1/catalog/packs", tags=["packs (v1, deprecated)"], route_class=DeprecatedRoute
)

PackIdPath = Annotated[str, Path(pattern=CATALOG_ID_PATTERN, description="The pack's id")]
After = Annotated[
    str | None, Query(pattern=CATALOG_ID_PATTERN, description="next_after of the page before")
]
Currency = Annotated[str, Field(pattern=CURRENCY_PATTERN, examples=["STRIDE", "USD"])]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _PackCommon(_Body):
    name: Name
    description: Description = ""
    items: list[ItemQuantity] = Field(default_factory=list, max_length=catalog.MAX_PACK_ENTRIES)
    content: list[CatalogId] = Field(default_factory=list, max_length=catalog.MAX_PACK_ENTRIES)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    stock_total: Annotated[int, Field(ge=0, le=10**9)] | None = Field(
        default=None, description="How many may ever be sold (null: unlimited)"
    )


# ---- v2 -----------------------------------------------------------------------------------


class PackWriteV2(_PackCommon):
    price: Price
    giftable: bool = Field(default=True, description="May be bought for another user")

    def spec(self) -> PackSpec:
        return PackSpec(**self.model_dump())


class PackCreateV2(PackWriteV2):
    pack_id: CatalogId


class _PackState(BaseModel):
    pack_id: str
    stock_sold: int
    stock_left: int | None = Field(description="null: unlimited")
    is_active: bool
    version: int = Field(description="The ETag's number: send it back in If-Match")
    created_at: datetime
    updated_at: datetime


class PackV2(_PackState):
    name: str
    description: str
    items: list[ItemQuantity]
    content: list[str]
    price: Price
    giftable: bool
    starts_at: datetime | None
    ends_at: datetime | None
    stock_total: int | None


class PackPageV2(BaseModel):
    packs: list[PackV2]
    next_after: str | None


# ---- v1 (deprecated) ----------------------------------------------------------------------


class PackWriteV1(_PackCommon):
    price: TokenAmount = Field(description="Deprecated shape: v2 sends price {amount, currency}")
    currency: Currency
    gift_allowed: bool = Field(default=True, description="Renamed giftable in v2")

    def spec(self) -> PackSpec:
        fields = self.model_dump(exclude={"price", "currency", "gift_allowed"})
        return PackSpec(
            **fields,
            price=Price(amount=self.price, currency=self.currency),
            giftable=self.gift_allowed,
        )


class PackCreateV1(PackWriteV1):
    pack_id: CatalogId


class PackV1(_PackState):
    name: str
    description: str
    items: list[ItemQuantity]
    content: list[str]
    price: Decimal
    currency: str
    gift_allowed: bool
    starts_at: datetime | None
    ends_at: datetime | None
    stock_total: int | None


class PackPageV1(BaseModel):
    packs: list[PackV1]
    next_after: str | None


def _state(row: CatalogPack) -> dict[str, Any]:
    left = None if row.stock_total is None else row.stock_total - row.stock_sold
    return {
        "pack_id": row.pack_id,
        "stock_sold": row.stock_sold,
        "stock_left": left,
        "is_active": row.is_active,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def pack_v2(row: CatalogPack) -> PackV2:
    spec = catalog.pack_spec(row)
    return PackV2(**_state(row), **spec.model_dump())


def pack_v1(row: CatalogPack) -> PackV1:
    spec = catalog.pack_spec(row)
    fields = spec.model_dump(exclude={"price", "giftable"})
    return PackV1(
        **_state(row),
        **fields,
        price=spec.price.amount,
        currency=spec.price.currency,
        gift_allowed=spec.giftable,
    )


# ---- purchases ----------------------------------------------------------------------------


class PurchaseV2(_Body):
    game_id: str = Field(pattern=GAME_ID_PATTERN)
    recipient_user_id: str | None = Field(
        default=None, pattern=USER_ID_PATTERN, description="Buy it as a gift for this app user"
    )


class PurchaseV1(_Body):
    game_id: str = Field(pattern=GAME_ID_PATTERN)
    gift_to: str | None = Field(
        default=None, pattern=USER_ID_PATTERN, description="Renamed recipient_user_id in v2"
    )


class _GrantCommon(BaseModel):
    grant_id: uuid.UUID
    game_id: str
    pack_id: str
    owner_id: str | None
    unlocked_by: str = Field(description="Who paid: the buyer")
    items: list[ItemQuantity]
    content: list[str]
    burn_command_id: uuid.UUID | None = Field(
        description="The game-token burn of the price (null in other currencies)"
    )
    burn_status: RewardStatus | None = Field(
        description="The burn's status at the chain writer (reward command life cycle)"
    )
    payment_state: PaymentState | None = Field(
        description="Paid in the game token: awaiting_payment (held: stock reserved, items "
        "not in the inventory yet) until the burn is confirmed on chain (paid: granted), "
        "payment_failed (burn failed or not authorized by payment_due_at: stock released, "
        "see payment_reason), refund_due (paid, but the items could not be granted: see "
        "payment_reason), then refunding (the price is being minted back: refund_command_id) "
        "and refunded (the refund is on chain); null: granted at once"
    )
    payment_reason: str | None = Field(description="Why the payment failed")
    payment_due_at: datetime | None = Field(
        description="The burn must be authorized before this, or the purchase is released"
    )
    refund_command_id: uuid.UUID | None = Field(
        description="The mint that refunds the price (refunding, refunded)"
    )
    refund_status: RewardStatus | None = Field(
        description="The refund mint's status at the chain writer (reward command life cycle)"
    )
    authorize_url: str | None = Field(
        description="While awaiting_payment: where the app asks for the EIP-2612 permit to "
        "sign (POST), then posts the signature to .../authorization"
    )
    created: bool = Field(description="False: this Idempotency-Key was used before")
    created_at: datetime


class GrantV2(_GrantCommon):
    price: Price | None
    recipient_user_id: str | None = Field(description="Set when bought for another user")


class GrantV1(_GrantCommon):
    price: Decimal | None
    currency: str | None
    gift_to: str | None


def _grant_common(session: Session, grant: Grant, created: bool) -> dict[str, Any]:
    return {
        "grant_id": grant.grant_id,
        "game_id": grant.game_id,
        "pack_id": grant.source_id,
        "owner_id": grant.owner_id,
        "unlocked_by": grant.unlocked_by,
        "items": grant.entries.get("items", []),
        "content": grant.entries.get("content", []),
        "burn_command_id": grant.reward_command_id,
        "burn_status": inventory.burn_status(session, grant.reward_command_id),
        "payment_state": grant.payment_state,
        "payment_reason": grant.payment_reason,
        "payment_due_at": grant.payment_due_at,
        "refund_command_id": grant.refund_command_id,
        "refund_status": inventory.burn_status(session, grant.refund_command_id),
        "authorize_url": inventory.purchase_intent_path(grant),
        "created": created,
        "created_at": grant.created_at,
    }


def _gift_to(grant: Grant) -> str | None:
    return grant.owner_id if grant.owner_id != grant.unlocked_by else None


def grant_v2(session: Session, grant: Grant, created: bool) -> GrantV2:
    price = inventory.price_of(grant)
    return GrantV2(
        **_grant_common(session, grant, created),
        price=Price(amount=price[0], currency=price[1]) if price else None,
        recipient_user_id=_gift_to(grant),
    )


def grant_v1(session: Session, grant: Grant, created: bool) -> GrantV1:
    price = inventory.price_of(grant)
    return GrantV1(
        **_grant_common(session, grant, created),
        price=price[0] if price else None,
        currency=price[1] if price else None,
        gift_to=_gift_to(grant),
    )


PURCHASE_ERRORS = {
    **APP_USER_ERRORS,
    **QUOTA_ERRORS,
    **NOT_JSON,
    **error_responses(
        {
            404: "No such pack, or the recipient is no active app user",
            409: "sold_out, not_on_sale, max_count_reached, already_owned, or "
            "idempotency_key_reused (the key was used for another request)",
        }
    ),
}
WRITE = {**GAME_KEY_ERRORS, **QUOTA_ERRORS, **NOT_JSON}


# ---- the routes of both versions: one function per operation, two renderings ----------


def _list(
    engine: Any, game: str, after: str | None, limit: int, currency: str | None, on_sale: bool
) -> tuple[list[CatalogPack], str | None]:
    filters = catalog.pack_filters(currency=currency, on_sale_at=now() if on_sale else None)
    with Session(engine) as session:
        rows = catalog.list_definitions(
            session, catalog.PACKS, game, after=after, limit=limit, filters=filters
        )
        session.expunge_all()
    return rows, (rows[-1].pack_id if len(rows) == limit else None)


CurrencyQuery = Annotated[
    str | None, Query(pattern=CURRENCY_PATTERN, description="Only packs priced in it")
]
OnSaleQuery = Annotated[bool, Query(description="Only packs on sale now (within their window)")]


@v2.get(
    "", response_model=PackPageV2, summary="The game's packs, by id", responses={**CALLER_ERRORS}
)
def list_packs_v2(
    caller: CallerDep,
    engine: EngineDep,
    game_id: GameIdQuery = None,
    after: After = None,
    limit: Limit = 50,
    currency: CurrencyQuery = None,
    on_sale: OnSaleQuery = False,
) -> PackPageV2:
    rows, next_after = _list(engine, game_of(caller, game_id), after, limit, currency, on_sale)
    return PackPageV2(packs=[pack_v2(r) for r in rows], next_after=next_after)


@v1.get(
    "",
    response_model=PackPageV1,
    summary="The game's packs (deprecated: use /v2/catalog/packs)",
    deprecated=True,
    responses={**CALLER_ERRORS},
)
def list_packs_v1(
    caller: CallerDep,
    engine: EngineDep,
    game_id: GameIdQuery = None,
    after: After = None,
    limit: Limit = 50,
    currency: CurrencyQuery = None,
    on_sale: OnSaleQuery = False,
) -> PackPageV1:
    rows, next_after = _list(engine, game_of(caller, game_id), after, limit, currency, on_sale)
    return PackPageV1(packs=[pack_v1(r) for r in rows], next_after=next_after)


def _create(engine: Any, game_id: str, pack_id: str, spec: PackSpec) -> CatalogPack:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        return catalog.create_pack(session, game_id, pack_id, spec)


@v2.post(
    "",
    status_code=201,
    response_model=PackV2,
    summary="Create a pack (game key)",
    responses={**WRITE, **CONFLICT},
)
def create_pack_v2(
    body: PackCreateV2, game_id: GameDep, engine: EngineDep, response: Response
) -> PackV2:
    row = _create(
        engine, game_id, body.pack_id, PackWriteV2(**body.model_dump(exclude={"pack_id"})).spec()
    )
    set_etag(response, row.version)
    return pack_v2(row)


@v1.post(
    "",
    status_code=201,
    response_model=PackV1,
    summary="Create a pack (deprecated: use /v2/catalog/packs)",
    deprecated=True,
    responses={**WRITE, **CONFLICT},
)
def create_pack_v1(
    body: PackCreateV1, game_id: GameDep, engine: EngineDep, response: Response
) -> PackV1:
    row = _create(
        engine, game_id, body.pack_id, PackWriteV1(**body.model_dump(exclude={"pack_id"})).spec()
    )
    set_etag(response, row.version)
    return pack_v1(row)


def _get(engine: Any, game: str, pack_id: str) -> CatalogPack:
    with Session(engine, expire_on_commit=False) as session:
        row = catalog.get_definition(session, catalog.PACKS, game, pack_id)
        session.expunge(row)
        return row


@v2.get(
    "/{pack_id}",
    response_model=PackV2,
    summary="One pack, with its ETag (If-None-Match: 304)",
    responses={**CALLER_ERRORS, **NOT_FOUND},
)
def get_pack_v2(
    pack_id: PackIdPath,
    caller: CallerDep,
    engine: EngineDep,
    response: Response,
    game_id: GameIdQuery = None,
    if_none_match: IfNoneMatch = None,
) -> PackV2 | Response:
    row = _get(engine, game_of(caller, game_id), pack_id)
    if (unchanged := not_modified(if_none_match, row.version)) is not None:
        return unchanged
    set_etag(response, row.version)
    return pack_v2(row)


@v1.get(
    "/{pack_id}",
    response_model=PackV1,
    summary="One pack (deprecated: use /v2/catalog/packs/{pack_id})",
    deprecated=True,
    responses={**CALLER_ERRORS, **NOT_FOUND},
)
def get_pack_v1(
    pack_id: PackIdPath,
    caller: CallerDep,
    engine: EngineDep,
    response: Response,
    game_id: GameIdQuery = None,
    if_none_match: IfNoneMatch = None,
) -> PackV1 | Response:
    row = _get(engine, game_of(caller, game_id), pack_id)
    if (unchanged := not_modified(if_none_match, row.version)) is not None:
        return unchanged
    set_etag(response, row.version)
    return pack_v1(row)


def _replace(
    engine: Any, game_id: str, pack_id: str, spec: PackSpec, if_match: str | None
) -> CatalogPack:
    expected = precondition(if_match)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        return catalog.replace_pack(session, game_id, pack_id, spec, expected, now())


@v2.put(
    "/{pack_id}",
    response_model=PackV2,
    summary="Replace a pack (game key); If-Match makes it conditional",
    responses={**WRITE, **NOT_FOUND, **STALE},
)
def replace_pack_v2(
    pack_id: PackIdPath,
    body: PackWriteV2,
    game_id: GameDep,
    engine: EngineDep,
    response: Response,
    if_match: IfMatchHeader = None,
) -> PackV2:
    row = _replace(engine, game_id, pack_id, body.spec(), if_match)
    set_etag(response, row.version)
    return pack_v2(row)


@v1.put(
    "/{pack_id}",
    response_model=PackV1,
    summary="Replace a pack (deprecated: use /v2/catalog/packs/{pack_id})",
    deprecated=True,
    responses={**WRITE, **NOT_FOUND, **STALE},
)
def replace_pack_v1(
    pack_id: PackIdPath,
    body: PackWriteV1,
    game_id: GameDep,
    engine: EngineDep,
    response: Response,
    if_match: IfMatchHeader = None,
) -> PackV1:
    row = _replace(engine, game_id, pack_id, body.spec(), if_match)
    set_etag(response, row.version)
    return pack_v1(row)


def _archive(engine: Any, game_id: str, pack_id: str, if_match: str | None) -> None:
    expected = precondition(if_match)
    with Session(engine) as session, session.begin():
        catalog.archive(session, catalog.PACKS, game_id, pack_id, expected, now())


ARCHIVE = {**GAME_KEY_ERRORS, **QUOTA_ERRORS, **NOT_FOUND, **STALE}


@v2.delete(
    "/{pack_id}",
    status_code=204,
    summary="Archive a pack (game key): no longer sold",
    responses=ARCHIVE,
)
def archive_pack_v2(
    pack_id: PackIdPath, game_id: GameDep, engine: EngineDep, if_match: IfMatchHeader = None
) -> None:
    _archive(engine, game_id, pack_id, if_match)


@v1.delete(
    "/{pack_id}",
    status_code=204,
    summary="Archive a pack (deprecated: use /v2/catalog/packs/{pack_id})",
    deprecated=True,
    responses=ARCHIVE,
)
def archive_pack_v1(
    pack_id: PackIdPath,
    game_id: GameDep,
    engine: EngineDep,
    if_match: IfMatchHeader = None,
) -> None:
    _archive(engine, game_id, pack_id, if_match)


RELEASE_EVERY_S = 60.0  # per API process: the sweep of unpaid holds after a purchase
_RELEASE = "unpaid_holds_sweep"


def _release_unpaid(engine: Any) -> None:
    with Session(engine) as session, session.begin():
        inventory.expire_unpaid(session, now())


def _schedule_release(http: Request, background: BackgroundTasks, engine: Any) -> None:
    """At most every ``RELEASE_EVERY_S`` per API process, after a purchase was answered:
    holds whose burn was not authorized by their deadline give their stock back (a
    purchase that finds its pack sold out also releases that pack's overdue holds first)."""
    last = per_app(http, _RELEASE, lambda: [0.0])
    if time.monotonic() - last[0] >= RELEASE_EVERY_S:
        last[0] = time.monotonic()
        background.add_task(_release_unpaid, engine)


def _buy(
    engine: Any, settings: Any, request: inventory.PurchaseRequest, render: Any, response: Response
) -> Any:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        grant, created = inventory.purchase(
            session,
            request,
            token=settings.reward_token,
            now=now(),
            payment_timeout_s=settings.purchase_payment_timeout_s,
        )
    with Session(engine) as session:  # after the commit: the pack's row is free again
        public = render(session, grant, created)
    response.status_code = 201 if created else 200
    return public


@v2.post(
    "/{pack_id}/purchase",
    status_code=201,
    response_model=GrantV2,
    summary="Buy a pack for yourself or another user (app user); once per Idempotency-Key",
    responses={**PURCHASE_ERRORS, 200: {"description": "The key was used before: that grant"}},
)
def purchase_v2(
    pack_id: PackIdPath,
    body: PurchaseV2,
    user_id: AppUserDep,
    key: IdempotencyKeyHeader,
    engine: EngineDep,
    settings: SettingsDep,
    response: Response,
    http: Request,
    background: BackgroundTasks,
) -> GrantV2:
    _schedule_release(http, background, engine)
    request = inventory.PurchaseRequest(body.game_id, pack_id, user_id, key, body.recipient_user_id)
    result: GrantV2 = _buy(engine, settings, request, grant_v2, response)
    return result


@v1.post(
    "/{pack_id}/purchase",
    status_code=201,
    response_model=GrantV1,
    summary="Buy a pack (deprecated: use /v2/catalog/packs/{pack_id}/purchase)",
    deprecated=True,
    responses={**PURCHASE_ERRORS, 200: {"description": "The key was used before: that grant"}},
)
def purchase_v1(
    pack_id: PackIdPath,
    body: PurchaseV1,
    user_id: AppUserDep,
    key: IdempotencyKeyHeader,
    engine: EngineDep,
    settings: SettingsDep,
    response: Response,
    http: Request,
    background: BackgroundTasks,
) -> GrantV1:
    _schedule_release(http, background, engine)
    request = inventory.PurchaseRequest(body.game_id, pack_id, user_id, key, body.gift_to)
    result: GrantV1 = _buy(engine, settings, request, grant_v1, response)
    return result
