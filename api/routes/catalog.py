"""``/v1/catalog/items`` and ``/v1/catalog/content``: the studio's catalog (its game key
writes; the game key or an app user reads), versioned with ``ETag``/``If-Match``.

A ``DELETE`` archives: what players own stays theirs, the definition leaves the lists and
can no longer be sold or granted; a ``PUT`` of the same id brings it back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api.auth import CALLER_ERRORS, GAME_KEY_ERRORS, QUOTA_ERRORS, CallerDep, GameDep
from api.deps import EngineDep
from api.errors import NOT_JSON
from api.etags import IfMatchHeader, IfNoneMatch, not_modified, precondition, set_etag
from api.routes.catalog_common import (
    CONFLICT,
    NOT_FOUND,
    STALE,
    GameIdQuery,
    Limit,
    game_of,
    now,
    route_class,
)
from core.content import catalog
from core.content.catalog import CATALOG_ID_PATTERN, CatalogId, ContentSpec, ItemSpec, TierSpec
from core.content.catalog_models import CatalogContent, CatalogItem, ContentKind

router = APIRouter(prefix="/v1/catalog", tags=["catalog"], route_class=route_class)

ItemIdPath = Annotated[str, Path(pattern=CATALOG_ID_PATTERN, description="The item's id")]
ContentIdPath = Annotated[str, Path(pattern=CATALOG_ID_PATTERN, description="The content's id")]
After = Annotated[
    str | None, Query(pattern=CATALOG_ID_PATTERN, description="next_after of the page before")
]
IncludeArchived = Annotated[bool, Query(description="Also list archived definitions")]


class ItemCreate(ItemSpec):
    item_id: CatalogId


class ItemPublic(ItemSpec):
    model_config = ConfigDict(extra="ignore", frozen=True)

    item_id: str
    is_active: bool
    version: int = Field(description="The ETag's number: send it back in If-Match")
    created_at: datetime
    updated_at: datetime


class ItemPage(BaseModel):
    items: list[ItemPublic]
    next_after: str | None = Field(description="Pass as ?after= for the next page; null: last")


class ContentCreate(ContentSpec):
    content_id: CatalogId


class ContentPublic(ContentSpec):
    model_config = ConfigDict(extra="ignore", frozen=True)

    content_id: str
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class ContentPage(BaseModel):
    content: list[ContentPublic]
    next_after: str | None


def _item(row: CatalogItem) -> ItemPublic:
    return ItemPublic.model_validate(row, from_attributes=True)


def _content(row: CatalogContent, tiers: list[TierSpec]) -> ContentPublic:
    fields: dict[str, Any] = {
        name: getattr(row, name) for name in ContentPublic.model_fields if name != "tiers"
    }
    return ContentPublic(**fields, tiers=tiers)


def _next(rows: list[Any], limit: int, id_column: str) -> str | None:
    return getattr(rows[-1], id_column) if len(rows) == limit else None


WRITE = {**GAME_KEY_ERRORS, **QUOTA_ERRORS, **NOT_JSON}


# ---- items -------------------------------------------------------------------------------


@router.get(
    "/items",
    response_model=ItemPage,
    summary="The game's items, by id (game key, or an app user naming the game)",
    responses={**CALLER_ERRORS},
)
def list_items(
    caller: CallerDep,
    engine: EngineDep,
    game_id: GameIdQuery = None,
    after: After = None,
    limit: Limit = 50,
    stackable: Annotated[bool | None, Query(description="Only (non-)stackable items")] = None,
    consumable: Annotated[bool | None, Query(description="Only (non-)consumable items")] = None,
    include_archived: IncludeArchived = False,
) -> ItemPage:
    game = game_of(caller, game_id)
    filters = []
    if stackable is not None:
        filters.append(CatalogItem.stackable == stackable)
    if consumable is not None:
        filters.append(CatalogItem.consumable == consumable)
    with Session(engine) as session:
        rows = catalog.list_definitions(
            session,
            catalog.ITEMS,
            game,
            after=after,
            limit=limit,
            include_archived=include_archived,
            filters=filters,
        )
        return ItemPage(items=[_item(r) for r in rows], next_after=_next(rows, limit, "item_id"))


@router.post(
    "/items",
    status_code=201,
    response_model=ItemPublic,
    summary="Create an item (game key)",
    responses={**WRITE, **CONFLICT},
)
def create_item(
    body: ItemCreate, game_id: GameDep, engine: EngineDep, response: Response
) -> ItemPublic:
    spec = ItemSpec(**body.model_dump(exclude={"item_id"}))
    with Session(engine) as session, session.begin():
        row = catalog.create_item(session, game_id, body.item_id, spec)
        public = _item(row)
    set_etag(response, public.version)
    return public


@router.get(
    "/items/{item_id}",
    response_model=ItemPublic,
    summary="One item, with its ETag (If-None-Match: 304)",
    responses={**CALLER_ERRORS, **NOT_FOUND},
)
def get_item(
    item_id: ItemIdPath,
    caller: CallerDep,
    engine: EngineDep,
    response: Response,
    game_id: GameIdQuery = None,
    if_none_match: IfNoneMatch = None,
) -> ItemPublic | Response:
    with Session(engine) as session:
        public = _item(
            catalog.get_definition(session, catalog.ITEMS, game_of(caller, game_id), item_id)
        )
    if (unchanged := not_modified(if_none_match, public.version)) is not None:
        return unchanged
    set_etag(response, public.version)
    return public


@router.put(
    "/items/{item_id}",
    response_model=ItemPublic,
    summary="Replace an item (game key); If-Match makes it conditional",
    responses={**WRITE, **NOT_FOUND, **STALE},
)
def replace_item(
    item_id: ItemIdPath,
    body: ItemSpec,
    game_id: GameDep,
    engine: EngineDep,
    response: Response,
    if_match: IfMatchHeader = None,
) -> ItemPublic:
    expected = precondition(if_match)
    with Session(engine) as session, session.begin():
        public = _item(catalog.replace_item(session, game_id, item_id, body, expected, now()))
    set_etag(response, public.version)
    return public


@router.delete(
    "/items/{item_id}",
    status_code=204,
    summary="Archive an item (game key); owners keep theirs",
    responses={**GAME_KEY_ERRORS, **QUOTA_ERRORS, **NOT_FOUND, **STALE},
)
def archive_item(
    item_id: ItemIdPath, game_id: GameDep, engine: EngineDep, if_match: IfMatchHeader = None
) -> None:
    expected = precondition(if_match)
    with Session(engine) as session, session.begin():
        catalog.archive(session, catalog.ITEMS, game_id, item_id, expected, now())


# ---- content -----------------------------------------------------------------------------


@router.get(
    "/content",
    response_model=ContentPage,
    summary="The game's unlockable content and battle-pass seasons, by id",
    responses={**CALLER_ERRORS},
)
def list_content(
    caller: CallerDep,
    engine: EngineDep,
    game_id: GameIdQuery = None,
    after: After = None,
    limit: Limit = 50,
    kind: Annotated[ContentKind | None, Query(description="Only this kind")] = None,
    include_archived: IncludeArchived = False,
) -> ContentPage:
    game = game_of(caller, game_id)
    filters = [CatalogContent.kind == kind] if kind is not None else []
    with Session(engine) as session:
        rows = catalog.list_definitions(
            session,
            catalog.CONTENT,
            game,
            after=after,
            limit=limit,
            include_archived=include_archived,
            filters=filters,
        )
        tiers = catalog.tiers_of(session, game, [r.content_id for r in rows])
        return ContentPage(
            content=[_content(r, tiers[r.content_id]) for r in rows],
            next_after=_next(rows, limit, "content_id"),
        )


@router.post(
    "/content",
    status_code=201,
    response_model=ContentPublic,
    summary="Create content, e.g. a battle-pass season with its tiers (game key)",
    responses={**WRITE, **CONFLICT},
)
def create_content(
    body: ContentCreate, game_id: GameDep, engine: EngineDep, response: Response
) -> ContentPublic:
    spec = ContentSpec(**body.model_dump(exclude={"content_id"}))
    with Session(engine) as session, session.begin():
        row = catalog.create_content(session, game_id, body.content_id, spec)
        public = _content(row, list(spec.tiers))
    set_etag(response, public.version)
    return public


@router.get(
    "/content/{content_id}",
    response_model=ContentPublic,
    summary="One content definition with its tiers, and its ETag (If-None-Match: 304)",
    responses={**CALLER_ERRORS, **NOT_FOUND},
)
def get_content(
    content_id: ContentIdPath,
    caller: CallerDep,
    engine: EngineDep,
    response: Response,
    game_id: GameIdQuery = None,
    if_none_match: IfNoneMatch = None,
) -> ContentPublic | Response:
    game = game_of(caller, game_id)
    with Session(engine) as session:
        row = catalog.get_definition(session, catalog.CONTENT, game, content_id)
        if (unchanged := not_modified(if_none_match, row.version)) is not None:
            return unchanged  # the tiers are not read
        public = _content(row, catalog.tiers_of(session, game, [content_id])[content_id])
    set_etag(response, public.version)
    return public


@router.put(
    "/content/{content_id}",
    response_model=ContentPublic,
    summary="Replace content and its tiers (game key); If-Match makes it conditional",
    responses={**WRITE, **NOT_FOUND, **STALE},
)
def replace_content(
    content_id: ContentIdPath,
    body: ContentSpec,
    game_id: GameDep,
    engine: EngineDep,
    response: Response,
    if_match: IfMatchHeader = None,
) -> ContentPublic:
    expected = precondition(if_match)
    with Session(engine) as session, session.begin():
        row = catalog.replace_content(session, game_id, content_id, body, expected, now())
        public = _content(row, list(body.tiers))
    set_etag(response, public.version)
    return public


@router.delete(
    "/content/{content_id}",
    status_code=204,
    summary="Archive content (game key); who unlocked it keeps it",
    responses={**GAME_KEY_ERRORS, **QUOTA_ERRORS, **NOT_FOUND, **STALE},
)
def archive_content(
    content_id: ContentIdPath, game_id: GameDep, engine: EngineDep, if_match: IfMatchHeader = None
) -> None:
    expected = precondition(if_match)
    with Session(engine) as session, session.begin():
        catalog.archive(session, catalog.CONTENT, game_id, content_id, expected, now())
