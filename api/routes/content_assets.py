"""``/v1/content/assets``: a studio's assets, their immutable versions and release channels
(game key), and the downloads of version bytes (game key or app user token).

Assets and channels answer an ``ETag`` (their row version); a change sends it back in
``If-Match`` and a stale one is refused with 412 (428 without one). Downloads stream the
bytes from object storage with the SHA-256 as a strong ``ETag``: ``If-None-Match`` (304),
one ``Range`` (206; 416 outside the file), ``If-Range``. See docs/content.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api.auth import CALLER_ERRORS, GAME_KEY_ERRORS, QUOTA_ERRORS, CallerDep, GameDep
from api.body import limited_body_route
from api.deps import EngineDep, SettingsDep
from api.errors import NOT_JSON, error_responses
from api.etags import IfMatchHeader, IfNoneMatch, not_modified, precondition
from core.content import assets
from core.content.assets import (
    ALL_PLATFORMS,
    ASSET_NAME_PATTERN,
    CHANNEL_PATTERN,
    MAX_PAGE,
    MAX_TAGS,
    PLATFORM_PATTERN,
    TAG_PATTERN,
    AssetView,
    ChannelMove,
    ChannelView,
    VersionView,
)
from core.content.models import AssetKind
from core.content.ranges import (
    Unsatisfiable,
    if_match,
    none_match,
    parse_range,
    range_applies,
)
from core.content.storage import storage_for
from core.content.tus import http_date

MAX_BODY_BYTES = 16 * 1024

router = APIRouter(
    prefix="/v1/content/assets",
    tags=["content"],
    route_class=limited_body_route(lambda _settings: MAX_BODY_BYTES, "send one asset at a time"),
)

AssetId = Annotated[uuid.UUID, Path(description="The asset's id")]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1, description="1, 2, 3... per asset")]
ChannelName = Annotated[
    str, Path(pattern=CHANNEL_PATTERN, description="e.g. latest, live, beta (lower case)")
]
PlatformQuery = Annotated[
    str,
    Query(pattern=PLATFORM_PATTERN, description="'all' or one platform (ios, android, pc...)"),
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page")]
After = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]
Name = Annotated[str, Field(pattern=ASSET_NAME_PATTERN, description="Unique per game")]
Tag = Annotated[str, Field(pattern=TAG_PATTERN)]
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL


class AssetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset_id: uuid.UUID | None = Field(
        default=None, description="Optional: your id, so that a retried create makes one asset"
    )
    kind: AssetKind
    name: Name
    description: str = Field(default="", max_length=2000, pattern=NO_NUL)
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)


class AssetUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)
    tags: list[Tag] | None = Field(default=None, max_length=MAX_TAGS)


class AssetPublic(BaseModel):
    asset_id: uuid.UUID
    game_id: str
    kind: AssetKind
    name: str
    description: str
    tags: list[str]
    etag: str = Field(description="Send it in If-Match to change or archive the asset")
    latest_version: int | None = Field(description="Its newest version number, if any")
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


class AssetPage(BaseModel):
    items: list[AssetPublic]
    next_cursor: str | None = Field(description="Pass as after= for the next page; null: last")


class VersionPublic(BaseModel):
    version_id: uuid.UUID
    asset_id: uuid.UUID
    version: int
    sha256: str = Field(description="Hex SHA-256 of the bytes; the download's ETag")
    size_bytes: int
    content_type: str
    filename: str
    download_path: str
    created_at: datetime


class VersionPage(BaseModel):
    items: list[VersionPublic]
    next_cursor: str | None


class ChannelMoveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=2**31 - 1, description="The version number to point at")
    reason: str = Field(
        default="", max_length=500, pattern=NO_NUL, description="Kept in the channel's history"
    )


class ChannelPublic(BaseModel):
    asset_id: uuid.UUID
    name: str
    platform: str
    version: int
    version_id: uuid.UUID
    etag: str = Field(description="Send it in If-Match to move the channel")
    updated_at: datetime


class ChannelMovePublic(BaseModel):
    from_version: int | None = Field(description="null for the channel's creation")
    to_version: int
    row_version: int
    moved_by: str
    reason: str
    moved_at: datetime


class ChannelHistoryPage(BaseModel):
    items: list[ChannelMovePublic]
    next_cursor: str | None


def _asset(view: AssetView) -> AssetPublic:
    return AssetPublic(
        asset_id=view.asset_id,
        game_id=view.game_id,
        kind=view.kind,
        name=view.name,
        description=view.description,
        tags=view.tags,
        etag=view.etag,
        latest_version=view.latest_version,
        archived_at=view.archived_at,
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


def _version(view: VersionView) -> VersionPublic:
    return VersionPublic(
        version_id=view.version_id,
        asset_id=view.asset_id,
        version=view.version,
        sha256=view.sha256,
        size_bytes=view.size_bytes,
        content_type=view.content_type,
        filename=view.filename,
        download_path=f"{router.prefix}/{view.asset_id}/versions/{view.version}/download",
        created_at=view.created_at,
    )


def _channel(view: ChannelView) -> ChannelPublic:
    return ChannelPublic(
        asset_id=view.asset_id,
        name=view.name,
        platform=view.platform,
        version=view.version,
        version_id=view.version_id,
        etag=view.etag,
        updated_at=view.updated_at,
    )


def _move(move: ChannelMove) -> ChannelMovePublic:
    return ChannelMovePublic(
        from_version=move.from_version,
        to_version=move.to_version,
        row_version=move.row_version,
        moved_by=move.moved_by,
        reason=move.reason,
        moved_at=move.moved_at,
    )


_NOT_FOUND = error_responses({404: "No such asset, version or channel in the key's game"})
_WRITE = {**GAME_KEY_ERRORS, **QUOTA_ERRORS, **NOT_JSON, **_NOT_FOUND}
_CONDITIONAL = error_responses(
    {
        409: "The name is taken, or the asset is archived",
        412: "If-Match is not the current ETag: read it again (precondition_failed)",
        428: "The row exists and If-Match is missing (precondition_required)",
    }
)


@router.post(
    "",
    status_code=201,
    response_model=AssetPublic,
    summary="Create an asset (a retry with the same asset_id answers the same asset, 200)",
    responses={**_WRITE, **error_responses({409: "The game has an asset of this name"})},
)
def create_asset(
    body: AssetCreate, game_id: GameDep, engine: EngineDep, response: Response
) -> AssetPublic:
    with Session(engine) as session, session.begin():
        view, created = assets.create_asset(
            session,
            game_id,
            kind=body.kind,
            name=body.name,
            description=body.description,
            tags=body.tags,
            asset_id=body.asset_id,
        )
    response.status_code = 201 if created else 200
    response.headers["ETag"] = view.etag
    response.headers["Location"] = f"{router.prefix}/{view.asset_id}"
    return _asset(view)


@router.get(
    "",
    response_model=AssetPage,
    summary="The game's assets by name: filter by kind, tag, name prefix",
    responses={**GAME_KEY_ERRORS},
)
def list_assets(
    game_id: GameDep,
    engine: EngineDep,
    kind: AssetKind | None = None,
    tag: Annotated[str | None, Query(pattern=TAG_PATTERN)] = None,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="Name prefix")
    ] = None,
    include_archived: bool = False,
    limit: Limit = 50,
    after: After = None,
) -> AssetPage:
    with Session(engine) as session:
        page = assets.list_assets(
            session,
            game_id,
            kind=kind,
            tag=tag,
            name_prefix=q,
            include_archived=include_archived,
            limit=limit,
            after=after,
        )
    return AssetPage(items=[_asset(v) for v in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{asset_id}",
    response_model=AssetPublic,
    summary="One asset, with its ETag (If-None-Match: 304)",
    responses={**GAME_KEY_ERRORS, **_NOT_FOUND},
)
def get_asset(
    asset_id: AssetId,
    game_id: GameDep,
    engine: EngineDep,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> AssetPublic | Response:
    with Session(engine) as session:
        view = assets.get_asset(session, game_id, asset_id)
    if (unchanged := not_modified(if_none_match, view.row_version)) is not None:
        return unchanged
    response.headers["ETag"] = view.etag
    return _asset(view)


@router.patch(
    "/{asset_id}",
    response_model=AssetPublic,
    summary="Rename, describe or tag an asset (If-Match: its ETag)",
    responses={**_WRITE, **_CONDITIONAL},
)
def update_asset(
    asset_id: AssetId,
    body: AssetUpdate,
    game_id: GameDep,
    engine: EngineDep,
    response: Response,
    if_match: IfMatchHeader = None,
) -> AssetPublic:
    with Session(engine) as session, session.begin():
        view = assets.update_asset(
            session,
            game_id,
            asset_id,
            precondition(if_match),
            name=body.name,
            description=body.description,
            tags=body.tags,
        )
    response.headers["ETag"] = view.etag
    return _asset(view)


@router.delete(
    "/{asset_id}",
    response_model=AssetPublic,
    summary="Archive an asset (If-Match): hidden from lists, its versions stay downloadable",
    responses={**_WRITE, **_CONDITIONAL},
)
def archive_asset(
    asset_id: AssetId,
    game_id: GameDep,
    engine: EngineDep,
    response: Response,
    if_match: IfMatchHeader = None,
) -> AssetPublic:
    with Session(engine) as session, session.begin():
        view = assets.archive_asset(session, game_id, asset_id, precondition(if_match))
    response.headers["ETag"] = view.etag
    return _asset(view)


@router.get(
    "/{asset_id}/versions",
    response_model=VersionPage,
    summary="An asset's versions, newest first (made by uploads; immutable)",
    responses={**GAME_KEY_ERRORS, **_NOT_FOUND},
)
def list_versions(
    asset_id: AssetId, game_id: GameDep, engine: EngineDep, limit: Limit = 50, after: After = None
) -> VersionPage:
    with Session(engine) as session:
        page = assets.list_versions(session, game_id, asset_id, limit=limit, after=after)
    return VersionPage(items=[_version(v) for v in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{asset_id}/versions/{version}",
    response_model=VersionPublic,
    summary="One version's checksum, size and type",
    responses={**GAME_KEY_ERRORS, **_NOT_FOUND},
)
def get_version(
    asset_id: AssetId, version: VersionNumber, game_id: GameDep, engine: EngineDep
) -> VersionPublic:
    with Session(engine) as session:
        return _version(assets.get_version(session, game_id, asset_id, version))


_DOWNLOAD = {
    **CALLER_ERRORS,
    **_NOT_FOUND,
    200: {"content": {"application/octet-stream": {}}, "description": "The bytes"},
    206: {"content": {"application/octet-stream": {}}, "description": "The asked range"},
    304: {"description": "If-None-Match names the current ETag"},
    **error_responses(
        {
            412: "If-Match names other bytes (the channel moved on): download again",
            416: "The range lies outside the file (Content-Range: bytes */size)",
        }
    ),
}


def _download(
    request: Request, version: VersionView, settings: SettingsDep, *, pinned: bool
) -> Response:
    """The version's bytes as the request's conditions and range ask, streamed."""
    etag, last_modified, size = version.etag, http_date(version.created_at), version.size_bytes
    headers = {
        "ETag": etag,
        "Last-Modified": last_modified,
        "Accept-Ranges": "bytes",
        # A version never changes; what a channel serves does.
        "Cache-Control": "private, max-age=31536000, immutable" if pinned else "no-cache",
    }
    if not pinned:
        path = f"{router.prefix}/{version.asset_id}/versions/{version.version}/download"
        headers["Content-Location"] = path
        headers["Stride-Version"] = str(version.version)
    # RFC 9110 section 13.2.2: If-Match first. A client resuming a channel's download asks
    # for the bytes it started with; when the channel moved on it gets a 412, not a mix.
    if not if_match(request.headers.get("if-match"), etag):
        raise HTTPException(
            412,
            f"If-Match: these bytes are now {etag} (version {version.version}); "
            "download them again from the start",
            headers={"ETag": etag},
        )
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    span = None
    if range_applies(request.headers.get("if-range"), etag, last_modified):
        try:
            span = parse_range(request.headers.get("range"), size)
        except Unsatisfiable:
            raise HTTPException(
                416,
                f"the range {request.headers.get('range', '')[:60]!r} lies outside the "
                f"{size} bytes of version {version.version}",
                headers={"Content-Range": f"bytes */{size}"},
            ) from None
    headers["Content-Type"] = version.content_type
    # Always an attachment: the type is the uploader's word, and a text/html upload shown
    # inline would run its script on the admin panel's origin (nginx adds nosniff).
    headers["Content-Disposition"] = (
        f"attachment; filename*=UTF-8''{quote(version.filename)}"
        if version.filename
        else "attachment"
    )
    first, last = span if span else (0, size - 1)
    status = 206 if span else 200
    if span:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(last - first + 1)
    if request.method == "HEAD" or size == 0:
        return Response(status_code=status, headers=headers)
    store = storage_for(settings)

    def body() -> Iterator[bytes]:
        yield from store.read(version.storage_key, first, last)

    return StreamingResponse(body(), status_code=status, headers=headers)


_VERSION_BYTES = "/{asset_id}/versions/{version}/download"
_CHANNEL_BYTES = "/{asset_id}/channels/{name}/download"


@router.get(
    _VERSION_BYTES,
    response_class=Response,
    summary="A version's bytes: ETag (SHA-256), Range, If-None-Match, If-Range",
    responses=_DOWNLOAD,
)
@router.head(
    _VERSION_BYTES,
    response_class=Response,
    operation_id="head_version_download",
    summary="A version's download headers (size, ETag) without the bytes",
    responses=_DOWNLOAD,
)
async def download_version(
    request: Request,
    asset_id: AssetId,
    version: VersionNumber,
    caller: CallerDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> Response:
    def read() -> VersionView:
        with Session(engine) as session:
            return assets.get_version(session, caller.game_id, asset_id, version)

    return _download(request, await run_in_threadpool(read), settings, pinned=True)


@router.get(
    "/{asset_id}/channels",
    response_model=list[ChannelPublic],
    summary="An asset's release channels: filter by name, platform",
    responses={**GAME_KEY_ERRORS, **_NOT_FOUND},
)
def list_channels(
    asset_id: AssetId,
    game_id: GameDep,
    engine: EngineDep,
    name: Annotated[str | None, Query(pattern=CHANNEL_PATTERN)] = None,
    platform: Annotated[str | None, Query(pattern=PLATFORM_PATTERN)] = None,
) -> list[ChannelPublic]:
    with Session(engine) as session:
        views = assets.list_channels(session, game_id, asset_id, name=name, platform=platform)
    return [_channel(v) for v in views]


@router.get(
    "/{asset_id}/channels/{name}",
    response_model=ChannelPublic,
    summary="One channel of one platform, with its ETag (If-None-Match: 304)",
    responses={**GAME_KEY_ERRORS, **_NOT_FOUND},
)
def get_channel(
    asset_id: AssetId,
    name: ChannelName,
    game_id: GameDep,
    engine: EngineDep,
    response: Response,
    platform: PlatformQuery = ALL_PLATFORMS,
    if_none_match: IfNoneMatch = None,
) -> ChannelPublic | Response:
    with Session(engine) as session:
        view = assets.get_channel(session, game_id, asset_id, name, platform)
    if (unchanged := not_modified(if_none_match, view.row_version)) is not None:
        return unchanged
    response.headers["ETag"] = view.etag
    return _channel(view)


@router.put(
    "/{asset_id}/channels/{name}",
    response_model=ChannelPublic,
    status_code=200,
    summary="Point a channel at a version (If-Match: its ETag; a new channel needs none)",
    responses={**_WRITE, **_CONDITIONAL, 201: {"description": "The channel was created"}},
)
def move_channel(
    asset_id: AssetId,
    name: ChannelName,
    body: ChannelMoveRequest,
    game_id: GameDep,
    engine: EngineDep,
    response: Response,
    platform: PlatformQuery = ALL_PLATFORMS,
    if_match: IfMatchHeader = None,
) -> ChannelPublic:
    with Session(engine) as session, session.begin():
        existed = bool(
            assets.list_channels(session, game_id, asset_id, name=name, platform=platform)
        )
        view, _changed = assets.move_channel(
            session,
            game_id,
            asset_id,
            name,
            platform,
            body.version,
            precondition(if_match),
            moved_by=f"game:{game_id}",
            reason=body.reason,
        )
    response.status_code = 200 if existed else 201  # the move may have created it
    response.headers["ETag"] = view.etag
    return _channel(view)


@router.get(
    "/{asset_id}/channels/{name}/history",
    response_model=ChannelHistoryPage,
    summary="Every move of a channel, newest first",
    responses={**GAME_KEY_ERRORS, **_NOT_FOUND},
)
def channel_history(
    asset_id: AssetId,
    name: ChannelName,
    game_id: GameDep,
    engine: EngineDep,
    platform: PlatformQuery = ALL_PLATFORMS,
    limit: Limit = 50,
    after: After = None,
) -> ChannelHistoryPage:
    with Session(engine) as session:
        page = assets.channel_history(
            session, game_id, asset_id, name, platform, limit=limit, after=after
        )
    return ChannelHistoryPage(items=[_move(m) for m in page.items], next_cursor=page.next_cursor)


@router.get(
    _CHANNEL_BYTES,
    response_class=Response,
    summary="The bytes a channel serves on a platform (its own pointer, else its 'all' one)",
    responses=_DOWNLOAD,
)
@router.head(
    _CHANNEL_BYTES,
    response_class=Response,
    operation_id="head_channel_download",
    summary="The download headers of what a channel serves, without the bytes",
    responses=_DOWNLOAD,
)
async def download_channel(
    request: Request,
    asset_id: AssetId,
    name: ChannelName,
    caller: CallerDep,
    engine: EngineDep,
    settings: SettingsDep,
    platform: PlatformQuery = ALL_PLATFORMS,
) -> Response:
    def read() -> VersionView:
        with Session(engine) as session:
            return assets.resolve_channel(session, caller.game_id, asset_id, name, platform)

    return _download(request, await run_in_threadpool(read), settings, pinned=False)
