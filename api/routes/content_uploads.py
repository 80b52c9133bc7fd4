"""``/v1/content/uploads``: resumable uploads of asset versions with the tus 1.0 protocol
(creation, checksum, expiration, termination), game key on every route but ``OPTIONS``.

``POST`` declares the length and, in ``Upload-Metadata``, the asset and the whole file's
SHA-256; ``PATCH`` sends bytes from ``Upload-Offset`` (each may carry an
``Upload-Checksum``), ``HEAD`` tells the offset to resume from, ``DELETE`` abandons it. The
PATCH that completes the file makes the version (``Stride-Version`` in its answer) when the
SHA-256 matches, and refuses it otherwise (460). Bodies stream to a spool file, capped at
what the upload still lacks before a byte is read; a PATCH cut off midway keeps what
arrived (unless it carried a checksum), so the client resumes from there. See
docs/content.md for why tus rather than S3-style multipart.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, BinaryIO

from fastapi import (
    APIRouter,
    BackgroundTasks,
    Depends,
    Header,
    HTTPException,
    Path,
    Request,
    Response,
)
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from api.auth import GAME_KEY_ERRORS, QUOTA_ERRORS, GameDep, Handler
from api.body import limited, limited_body_route
from api.deps import EngineDep, SettingsDep, per_app
from api.errors import domain_error_handler, error_responses, http_error_handler
from core.content import storage as keys
from core.content import uploads
from core.content.assets import get_version_by_id
from core.content.errors import ChecksumMismatch, OffsetMismatch, UnsupportedMediaType
from core.content.models import UploadStatus
from core.content.storage import ObjectStorage, storage_for
from core.content.tus import (
    OFFSET_CONTENT_TYPE,
    TUS_VERSION,
    capability_headers,
    creation_request,
    encode_metadata,
    http_date,
    parse_checksum,
    parse_length,
    supported_version,
)
from core.platform.config import ContentSettings, Settings
from core.platform.errors import DomainError

# No model bodies: the credential is checked before a byte of a PATCH is received.
_Authenticated = limited_body_route(lambda _settings: 0, "send bytes with PATCH")


class TusRoute(_Authenticated):  # type: ignore[misc, valid-type]
    """tus 1.0: every answer carries ``Tus-Resumable``, refusals too (in the API's one error
    shape, built by its own handlers)."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def tus(request: Request) -> Response:
            try:
                response = await handler(request)
            except DomainError as exc:
                response = await domain_error_handler(request, exc)
            except StarletteHTTPException as exc:
                response = await http_error_handler(request, exc)
            response.headers.setdefault("Tus-Resumable", TUS_VERSION)
            return response

        return tus


router = APIRouter(prefix="/v1/content/uploads", tags=["content"], route_class=TusRoute)

UploadId = Annotated[uuid.UUID, Path(description="The id in the creation's Location")]


def tus_resumable(tus_resumable: Annotated[str | None, Header()] = None) -> None:
    """Every tus request but OPTIONS names the protocol version: 412 for another one."""
    if not supported_version(tus_resumable):
        raise HTTPException(
            412,
            f"Tus-Resumable {tus_resumable!r} is not supported; send Tus-Resumable: {TUS_VERSION}",
            headers={"Tus-Version": TUS_VERSION, "Tus-Resumable": TUS_VERSION},
        )


TusDep = Depends(tus_resumable)


class UploadPublic(BaseModel):
    upload_id: uuid.UUID
    asset_id: uuid.UUID
    length: int
    offset: int = Field(description="Bytes received: the next PATCH's Upload-Offset")
    declared_sha256: str
    content_type: str
    filename: str
    status: UploadStatus
    failure_reason: str | None
    version: int | None = Field(description="The version this upload made, once completed")
    expires_at: datetime = Field(description="An incomplete upload is refused from then on")
    created_at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


def _tus_headers(view: uploads.UploadView) -> dict[str, str]:
    headers = {
        "Tus-Resumable": TUS_VERSION,
        "Upload-Offset": str(view.offset),
        "Upload-Length": str(view.length),
        "Cache-Control": "no-store",
    }
    if view.status is UploadStatus.receiving:
        headers["Upload-Expires"] = http_date(view.expires_at)
    return headers


def _location(upload_id: uuid.UUID) -> str:
    return f"{router.prefix}/{upload_id}"


_SWEEP = "content_upload_sweep"  # app.state: monotonic time of the last sweep


def _sweep(engine: Engine, settings: ContentSettings) -> None:
    uploads.expire_uploads(
        engine,
        storage_for(settings),
        _now(),
        spool_older_than_s=settings.content_upload_expiry_s,
    )


def _schedule_sweep(
    request: Request, background: BackgroundTasks, engine: Engine, settings: Settings
) -> None:
    """At most every ``content_upload_cleanup_interval_s`` per API process, after a creation
    has been answered: expire incomplete uploads and delete their parts."""
    last = per_app(request, _SWEEP, lambda: [0.0])
    if time.monotonic() - last[0] >= settings.content_upload_cleanup_interval_s:
        last[0] = time.monotonic()
        background.add_task(run_in_threadpool, _sweep, engine, settings)


_TUS_ERRORS = {
    **GAME_KEY_ERRORS,
    **error_responses(
        {
            400: "A tus header is missing or malformed",
            404: "No such upload of the key's game",
            410: "The upload was terminated, expired or refused (gone)",
            412: "Tus-Resumable is not 1.0.0",
        }
    ),
}


@router.options(
    "",
    status_code=204,
    response_class=Response,
    summary="tus capability discovery: version, extensions, size limit, checksums",
)
def upload_options(settings: SettingsDep) -> Response:
    return Response(status_code=204, headers=capability_headers(settings.content_max_upload_bytes))


@router.post(
    "",
    status_code=201,
    response_model=UploadPublic,
    dependencies=[TusDep],
    summary="Create an upload (tus creation): Upload-Length, Upload-Metadata with asset_id, "
    "sha256 and optionally content_type, filename",
    responses={
        **_TUS_ERRORS,
        **QUOTA_ERRORS,
        **error_responses({409: "The asset is archived", 413: "Upload-Length over Tus-Max-Size"}),
    },
)
async def create_upload(
    request: Request,
    background: BackgroundTasks,
    game_id: GameDep,
    engine: EngineDep,
    settings: SettingsDep,
    upload_length: Annotated[str | None, Header()] = None,
    upload_metadata: Annotated[str | None, Header()] = None,
) -> Response:
    declared = creation_request(upload_length, upload_metadata)
    now = _now()

    def create() -> uploads.UploadView:
        with Session(engine) as session, session.begin():
            return uploads.create_upload(session, game_id, declared, settings, now)

    view = await run_in_threadpool(create)
    if view.complete:  # an empty file is complete at once
        view = await run_in_threadpool(
            uploads.finish, engine, storage_for(settings), game_id, view.upload_id, now
        )
    _schedule_sweep(request, background, engine, settings)
    body = await run_in_threadpool(_public, engine, view)
    headers = {**_tus_headers(view), "Location": _location(view.upload_id)}
    return Response(
        body.model_dump_json(),
        status_code=201,
        headers=headers,
        media_type="application/json",
        background=background,
    )


def _public(engine: Engine, view: uploads.UploadView) -> UploadPublic:
    version = None
    if view.version_id is not None:
        with Session(engine) as session:
            version = get_version_by_id(session, view.version_id).version
    return UploadPublic(
        upload_id=view.upload_id,
        asset_id=view.asset_id,
        length=view.length,
        offset=view.offset,
        declared_sha256=view.declared_sha256,
        content_type=view.content_type,
        filename=view.filename,
        status=view.status,
        failure_reason=view.failure_reason,
        version=version,
        expires_at=view.expires_at,
        created_at=view.created_at,
    )


def _read(engine: Engine, game_id: str, upload_id: uuid.UUID) -> uploads.UploadView:
    with Session(engine) as session:
        return uploads.get_upload(session, game_id, upload_id, _now())


@router.head(
    "/{upload_id}",
    response_class=Response,
    dependencies=[TusDep],
    summary="The offset to resume from (Upload-Offset), the length and the expiry",
    responses=_TUS_ERRORS,
)
async def upload_offset(upload_id: UploadId, game_id: GameDep, engine: EngineDep) -> Response:
    view = await run_in_threadpool(_read, engine, game_id, upload_id)
    if view.status is not UploadStatus.completed:
        uploads.receiving(view)
    headers = _tus_headers(view)
    headers["Upload-Metadata"] = encode_metadata(view.metadata)
    if view.version_id is not None:
        headers["Stride-Version-Id"] = str(view.version_id)
    return Response(status_code=200, headers=headers)


@router.get(
    "/{upload_id}",
    response_model=UploadPublic,
    summary="An upload's state as JSON (status, offset, the version it made)",
    responses={**GAME_KEY_ERRORS, **error_responses({404: "No such upload of the key's game"})},
)
async def get_upload(upload_id: UploadId, game_id: GameDep, engine: EngineDep) -> UploadPublic:
    view = await run_in_threadpool(_read, engine, game_id, upload_id)
    return await run_in_threadpool(_public, engine, view)


_SPOOL_WRITE_BYTES = 4 << 20
"""Bytes gathered from the request before one write (and the hashing) in a worker thread:
the body arrives in pieces of about 64 KiB, too small to leave the event loop for each."""


def _absorb(handle: BinaryIO, block: bytes, hashers: tuple[Any, ...]) -> None:
    handle.write(block)
    for hasher in hashers:  # hashlib releases the GIL: the event loop receives meanwhile
        hasher.update(block)


async def _spool(
    request: Request, store: ObjectStorage, hashers: tuple[Any, ...]
) -> tuple[FilePath, int, bool]:
    """The body into a spool file, fed to ``hashers`` too: its path, its size, and whether
    it arrived whole. Blocks of :data:`_SPOOL_WRITE_BYTES` are written and hashed in a
    worker thread while the next one is received (one write in flight at a time)."""
    store.spool_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=store.spool_dir, prefix="patch-")
    path = FilePath(name)
    size, whole = 0, True
    pending: asyncio.Future[None] | None = None
    buffer = bytearray()
    try:
        with open(fd, "wb", buffering=0) as handle:

            async def flush() -> None:
                nonlocal pending, buffer
                if pending is not None:
                    await pending
                    pending = None
                if buffer:
                    block, buffer = bytes(buffer), bytearray()
                    pending = asyncio.ensure_future(
                        run_in_threadpool(_absorb, handle, block, hashers)
                    )

            try:
                try:
                    async for chunk in request.stream():
                        buffer += chunk
                        size += len(chunk)
                        if len(buffer) >= _SPOOL_WRITE_BYTES:
                            await flush()
                except ClientDisconnect:
                    whole = False
                await flush()
            finally:
                if pending is not None:
                    await pending
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size, whole


_HASH_STATES = "content_upload_hash_states"  # app.state: uploads.HashStates


@router.patch(
    "/{upload_id}",
    status_code=204,
    response_class=Response,
    dependencies=[TusDep],
    summary="Send bytes at Upload-Offset (Content-Type: application/offset+octet-stream; "
    "optional Upload-Checksum: sha1|sha256 <base64>)",
    responses={
        **_TUS_ERRORS,
        **QUOTA_ERRORS,
        **error_responses(
            {
                409: "Upload-Offset is not the upload's offset: HEAD, resume (offset_mismatch)",
                413: "More bytes than the upload lacks",
                415: "Content-Type is not application/offset+octet-stream",
                460: "Upload-Checksum, or the whole file's SHA-256, does not match the bytes",
            }
        ),
    },
)
async def upload_bytes(
    request: Request,
    upload_id: UploadId,
    game_id: GameDep,
    engine: EngineDep,
    settings: SettingsDep,
    upload_offset: Annotated[str | None, Header()] = None,
    upload_checksum: Annotated[str | None, Header()] = None,
    content_type: Annotated[str | None, Header()] = None,
) -> Response:
    if (content_type or "").split(";")[0].strip().lower() != OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaType(
            f"a PATCH body must be sent as Content-Type: {OFFSET_CONTENT_TYPE}"
        )
    offset = parse_length(upload_offset, "Upload-Offset")
    checksum = parse_checksum(upload_checksum)
    view = uploads.receiving(await run_in_threadpool(_read, engine, game_id, upload_id))
    if offset != view.offset:
        raise OffsetMismatch(
            f"Upload-Offset {offset} is not the upload's offset {view.offset}: resume from there"
        )
    store = storage_for(settings)
    now = _now()
    states = per_app(request, _HASH_STATES, uploads.HashStates)
    if not view.complete:
        hasher = checksum.hasher() if checksum else None
        running = states.resume(upload_id, offset)  # the whole file's SHA-256 so far
        capped = limited(
            request, view.length - offset, "send at most the bytes the upload still lacks"
        )
        if checksum is not None and checksum.algorithm == "sha256" and offset == 0:
            hasher = running  # from the first byte, both hash the same bytes: hash them once
        hashers = tuple({id(h): h for h in (hasher, running) if h is not None}.values())
        path, size, whole = await _spool(capped, store, hashers)
        if checksum is not None and (not whole or not checksum.matches(hasher)):
            path.unlink(missing_ok=True)
            if whole:
                raise ChecksumMismatch(
                    f"the PATCH's bytes do not match its Upload-Checksum ({checksum.algorithm});"
                    f" nothing was kept: send them again from offset {offset}"
                )
            return Response(status_code=400)  # cut off: nobody reads this answer
        if size == 0:
            path.unlink(missing_ok=True)
        else:
            part = keys.upload_part_key(upload_id, offset)
            await run_in_threadpool(store.put_file, part, path)

            def record() -> uploads.UploadView:
                with Session(engine) as session, session.begin():
                    return uploads.record_part(
                        session, game_id, upload_id, offset, size, part, settings, now
                    )

            try:
                view = await run_in_threadpool(record)
            except Exception:
                await run_in_threadpool(store.delete, part)
                raise
            if running is not None:
                states.advance(upload_id, offset, offset + size, running)
        if not whole:
            return Response(status_code=400)  # cut off: the bytes are kept, nobody reads this
    headers = {}
    if view.complete:
        received = states.take(upload_id, view.length)
        view = await run_in_threadpool(
            uploads.finish, engine, store, game_id, upload_id, now, received
        )
        if view.version_id is not None:
            headers["Stride-Version-Id"] = str(view.version_id)
            public = await run_in_threadpool(_public, engine, view)
            headers["Stride-Version"] = str(public.version)
    return Response(status_code=204, headers={**_tus_headers(view), **headers})


@router.delete(
    "/{upload_id}",
    status_code=204,
    response_class=Response,
    dependencies=[TusDep],
    summary="Terminate an upload (tus termination): its bytes are deleted",
    responses={**_TUS_ERRORS, **error_responses({409: "The upload is complete"})},
)
async def terminate_upload(
    upload_id: UploadId, game_id: GameDep, engine: EngineDep, settings: SettingsDep
) -> Response:
    def terminate() -> None:
        with Session(engine) as session, session.begin():
            uploads.terminate(session, storage_for(settings), game_id, upload_id, _now())

    await run_in_threadpool(terminate)
    return Response(status_code=204, headers={"Tus-Resumable": TUS_VERSION})
