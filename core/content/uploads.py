"""Resumable uploads (tus 1.0) of new asset versions: creation, parts, completion, termination
and expiry.

Each PATCH's bytes are stored as a part of their own (``core.content.storage``), then
recorded with one conditional UPDATE: ``upload_offset`` moves from the offset the PATCH
started at, or the PATCH lost a race and its part is deleted. Nothing is locked while bytes
arrive, and the same code serves a folder and S3 (which cannot append). The whole file's
SHA-256 is taken as the bytes arrive and carried from PATCH to PATCH in :class:`HashStates`
(per process: a PATCH that lands in another process, or after a restart, has none, and the
composed file is then hashed). When the offset reaches the length, the parts are composed
into one object; the version is created only when its SHA-256 is the one declared at
creation. An incomplete upload
expires ``content_upload_expiry_s`` after its last PATCH: it is refused from then on, and
:func:`expire_uploads` (the API runs it at most every ``content_upload_cleanup_interval_s``
when uploads are created; ``stride content uploads expire`` runs it by hand) deletes its
parts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, cast, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.content import storage as keys
from core.content.assets import add_version, lock_live_asset
from core.content.errors import (
    AssetNotFound,
    BadHeader,
    ChecksumMismatch,
    OffsetMismatch,
    TooLarge,
    UploadGone,
)
from core.content.models import ContentUpload, UploadStatus
from core.content.storage import ObjectStorage
from core.content.tus import UploadRequest
from core.platform.config import ContentSettings
from core.platform.errors import Conflict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadView:
    upload_id: uuid.UUID
    game_id: str
    asset_id: uuid.UUID
    length: int
    offset: int
    declared_sha256: str
    content_type: str
    filename: str
    metadata: dict[str, str]
    status: UploadStatus
    failure_reason: str | None
    version_id: uuid.UUID | None
    parts: int
    created_at: datetime
    expires_at: datetime

    @property
    def complete(self) -> bool:
        return self.offset == self.length


def _view(row: ContentUpload, now: datetime) -> UploadView:
    status = UploadStatus(row.status)
    if status is UploadStatus.receiving and row.expires_at <= now:
        status = UploadStatus.expired  # the sweep has not run yet: it is expired all the same
    return UploadView(
        row.upload_id,
        row.game_id,
        row.asset_id,
        row.upload_length,
        row.upload_offset,
        row.declared_sha256,
        row.content_type,
        row.filename,
        dict(row.metadata_),
        status,
        row.failure_reason,
        row.version_id,
        len(row.parts),
        row.created_at,
        row.expires_at,
    )


def create_upload(
    session: Session,
    game_id: str,
    request: UploadRequest,
    settings: ContentSettings,
    now: datetime,
) -> UploadView:
    """A new upload of ``request.length`` bytes for one of the game's live assets."""
    if request.length > settings.content_max_upload_bytes:
        raise TooLarge(
            f"Upload-Length {request.length} is over the limit of "
            f"{settings.content_max_upload_bytes} bytes (Tus-Max-Size)"
        )
    try:
        asset_id = uuid.UUID(request.asset_id)
    except ValueError:
        raise BadHeader(
            f"Upload-Metadata asset_id {request.asset_id[:40]!r} is not a UUID"
        ) from None
    lock_live_asset(session, game_id, asset_id)
    row = ContentUpload(
        upload_id=uuid.uuid4(),
        game_id=game_id,
        asset_id=asset_id,
        upload_length=request.length,
        upload_offset=0,
        declared_sha256=request.sha256,
        content_type=request.content_type,
        filename=request.filename,
        metadata_=request.metadata,
        parts=[],
        status=UploadStatus.receiving,
        expires_at=now + timedelta(seconds=settings.content_upload_expiry_s),
    )
    session.add(row)
    session.flush()
    session.refresh(row)
    return _view(row, now)


def _row(
    session: Session, game_id: str, upload_id: uuid.UUID, *, lock: bool = False
) -> ContentUpload:
    query = select(ContentUpload).where(ContentUpload.upload_id == upload_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    row = session.scalars(query).one_or_none()
    if row is None or row.game_id != game_id:
        raise AssetNotFound(f"no upload {upload_id} of game {game_id!r}")
    return row


def get_upload(session: Session, game_id: str, upload_id: uuid.UUID, now: datetime) -> UploadView:
    return _view(_row(session, game_id, upload_id), now)


def receiving(view: UploadView) -> UploadView:
    """``view`` when it may still take bytes; :class:`UploadGone` (410) otherwise."""
    if view.status is UploadStatus.receiving:
        return view
    if view.status is UploadStatus.completed:
        raise Conflict(f"upload {view.upload_id} is complete: version {view.version_id} was made")
    reason = f": {view.failure_reason}" if view.failure_reason else ""
    raise UploadGone(f"upload {view.upload_id} is {view.status}{reason}; create a new upload")


def record_part(
    session: Session,
    game_id: str,
    upload_id: uuid.UUID,
    offset: int,
    size: int,
    key: str,
    settings: ContentSettings,
    now: datetime,
) -> UploadView:
    """Record a stored part of ``size`` bytes at ``offset``: the upload's offset must still
    be ``offset`` (else :class:`OffsetMismatch`, and the caller deletes the part)."""
    part = {"offset": offset, "size": size, "key": key}
    updated = session.execute(
        update(ContentUpload)
        .where(
            ContentUpload.upload_id == upload_id,
            ContentUpload.game_id == game_id,
            ContentUpload.status == UploadStatus.receiving,
            ContentUpload.upload_offset == offset,
            ContentUpload.expires_at > now,
            ContentUpload.upload_length >= offset + size,
            func.jsonb_array_length(ContentUpload.parts) < settings.content_upload_max_parts,
        )
        .values(
            upload_offset=offset + size,
            parts=ContentUpload.parts.op("||")(cast(bindparam("part", json.dumps([part])), JSONB)),
            expires_at=now + timedelta(seconds=settings.content_upload_expiry_s),
            updated_at=func.now(),
        )
        .returning(ContentUpload.upload_id)
    ).scalar_one_or_none()
    row = _row(session, game_id, upload_id)
    session.refresh(row)
    view = _view(row, now)
    if updated is not None:
        return view
    receiving(view)
    if view.offset != offset:
        raise OffsetMismatch(
            f"Upload-Offset {offset} is not the upload's offset {view.offset}: HEAD it and resume"
            " from there"
        )
    if view.parts >= settings.content_upload_max_parts:
        raise Conflict(
            f"upload {upload_id} has taken {view.parts} PATCH requests, the limit: send the rest"
            " in fewer, larger ones (create a new upload)"
        )
    raise OffsetMismatch(f"the part would end past Upload-Length {view.length}")


class HashStates:
    """The running SHA-256 of uploads' bytes, from one PATCH to the next, in this process.

    A state is kept under ``(upload_id, offset)``: that of the bytes ``0..offset`` as
    recorded. A PATCH at ``offset`` continues a copy of it (:meth:`resume`), so a PATCH that
    loses its race changes nothing; only the PATCH whose part was recorded stores the state
    at its end (:meth:`advance`). At most ``capacity`` states are kept (the oldest go
    first); a missing one only means the composed file is hashed at the end.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._states: OrderedDict[tuple[uuid.UUID, int], Any] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def resume(self, upload_id: uuid.UUID, offset: int) -> Any | None:
        """A hasher of the bytes before ``offset`` to continue (a copy), or None."""
        if offset == 0:
            return hashlib.sha256()
        with self._lock:
            state = self._states.get((upload_id, offset))
            return None if state is None else state.copy()

    def advance(self, upload_id: uuid.UUID, start: int, end: int, hasher: Any) -> None:
        """The part ``start..end`` was recorded: ``hasher`` holds the bytes ``0..end``."""
        with self._lock:
            self._states.pop((upload_id, start), None)
            self._states[(upload_id, end)] = hasher
            while len(self._states) > self._capacity:
                self._states.popitem(last=False)

    def take(self, upload_id: uuid.UUID, length: int) -> str | None:
        """The SHA-256 (hex) of all ``length`` bytes, when known; forgotten from then on."""
        with self._lock:
            state = self._states.pop((upload_id, length), None)
        return None if state is None else str(state.hexdigest())


def finish(
    engine: Engine,
    storage: ObjectStorage,
    game_id: str,
    upload_id: uuid.UUID,
    now: datetime,
    received_sha256: str | None = None,
) -> UploadView:
    """Make the version of a fully received upload: compose its parts, check the SHA-256
    and size against the declaration, store the bytes under the version's key, create the
    version. ``received_sha256`` is the SHA-256 taken while the bytes arrived
    (:class:`HashStates`); without it the composed bytes are hashed. Running it again (a
    retried PATCH, a crash in between) does it at most once: the upload's row is locked
    meanwhile."""
    with Session(engine) as session, session.begin():
        row = _row(session, game_id, upload_id, lock=True)
        view = _view(row, now)
        if view.status is not UploadStatus.receiving or not view.complete:
            return view
        parts = [p["key"] for p in sorted(row.parts, key=lambda p: p["offset"])]
        assembled = keys.assembled_key(upload_id)
        sha256, size = storage.compose(assembled, parts, received_sha256)
        if sha256 != row.declared_sha256 or size != row.upload_length:
            reason = (
                f"the bytes' SHA-256 is {sha256}, not the declared {row.declared_sha256}"
                if size == row.upload_length
                else f"{size} bytes were stored, not {row.upload_length}"
            )
            row.status = UploadStatus.failed
            row.failure_reason = reason
            failed = True
        else:
            target = keys.version_key(game_id, sha256)
            storage.promote(assembled, target)
            asset = lock_live_asset(session, game_id, row.asset_id)
            version, _created = add_version(
                session,
                asset,
                sha256=sha256,
                size_bytes=size,
                content_type=row.content_type,
                filename=row.filename,
                storage_key=target,
                upload_id=upload_id,
            )
            row.status = UploadStatus.completed
            row.version_id = version.version_id
            failed = False
        row.updated_at = now
        session.flush()
        session.refresh(row)
        view = _view(row, now)
    storage.delete_prefix(keys.upload_prefix(upload_id))
    if failed:
        raise ChecksumMismatch(
            f"upload {upload_id} refused: {view.failure_reason}; nothing was stored, upload the"
            " file again"
        )
    return view


def terminate(
    session: Session, storage: ObjectStorage, game_id: str, upload_id: uuid.UUID, now: datetime
) -> None:
    """tus termination: the upload takes no more bytes and its parts are deleted. Deleting
    an upload already gone is a no-op; a completed one made an immutable version (409)."""
    row = _row(session, game_id, upload_id, lock=True)
    if row.status == UploadStatus.completed:
        raise Conflict(f"upload {upload_id} is complete: its version is immutable")
    if row.status == UploadStatus.receiving:
        row.status = UploadStatus.terminated
        row.updated_at = now
        session.flush()
    storage.delete_prefix(keys.upload_prefix(upload_id))


def expire_uploads(
    engine: Engine,
    storage: ObjectStorage,
    now: datetime,
    limit: int = 1000,
    spool_older_than_s: float | None = None,
) -> int:
    """Mark incomplete uploads past their expiry ``expired`` and delete their parts; how many.
    Safe to run from several processes at once (each row is claimed by one UPDATE). With
    ``spool_older_than_s``, also delete this process's orphaned spool files that old."""
    with engine.begin() as conn:
        expired = list(
            conn.execute(
                text(
                    "UPDATE content_uploads SET status = 'expired', updated_at = now()"
                    " WHERE upload_id IN (SELECT upload_id FROM content_uploads"
                    "  WHERE status = 'receiving' AND expires_at <= :now"
                    "  ORDER BY expires_at LIMIT :limit FOR UPDATE SKIP LOCKED)"
                    " RETURNING upload_id"
                ),
                {"now": now, "limit": limit},
            ).scalars()
        )
    for upload_id in expired:
        storage.delete_prefix(keys.upload_prefix(upload_id))
    if spool_older_than_s is not None:
        keys.clean_spool(storage, spool_older_than_s, now.timestamp())
    if expired:
        log.info("expired %d incomplete content uploads", len(expired))
    return len(expired)
