"""Game content: assets, versions, release channels, resumable uploads (tus 1.0) and
resumable downloads (``Range`` + ``If-Range``), typed over :class:`~stride_client.Transport`.

Studio calls need the game key; downloads also work with a player's token::

    with Transport(url, game_key=key) as transport:
        content = AssetsClient(transport)
        asset = content.create_asset("texture", "hero/diffuse.png", tags=["hero"])
        result = content.upload(asset.asset_id, Path("diffuse.png"), progress=print)
        content.move_channel(asset.asset_id, "live", result.version)
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx

from stride_client._http import RETRIED_STATUSES, StrideAPIError, Transport, retry_after_s

TUS_VERSION = "1.0.0"
TUS = {"Tus-Resumable": TUS_VERSION}
DEFAULT_CHUNK_BYTES = 64 << 20  # per PATCH: fewer parts to record and compose
ASSETS = "/v1/content/assets"
UPLOADS = "/v1/content/uploads"

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes in all) as a transfer goes."""

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class Asset:
    asset_id: uuid.UUID
    game_id: str
    kind: str
    name: str
    description: str
    tags: list[str]
    etag: str
    latest_version: int | None
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, body: dict[str, Any]) -> Asset:
        return cls(
            uuid.UUID(body["asset_id"]),
            body["game_id"],
            body["kind"],
            body["name"],
            body["description"],
            list(body["tags"]),
            body["etag"],
            body["latest_version"],
            _time(body["archived_at"]),
            _when(body["created_at"]),
            _when(body["updated_at"]),
        )


@dataclass(frozen=True)
class Version:
    version_id: uuid.UUID
    asset_id: uuid.UUID
    version: int
    sha256: str
    size_bytes: int
    content_type: str
    filename: str
    download_path: str
    created_at: datetime

    @classmethod
    def of(cls, body: dict[str, Any]) -> Version:
        return cls(
            uuid.UUID(body["version_id"]),
            uuid.UUID(body["asset_id"]),
            body["version"],
            body["sha256"],
            body["size_bytes"],
            body["content_type"],
            body["filename"],
            body["download_path"],
            _when(body["created_at"]),
        )


@dataclass(frozen=True)
class Channel:
    asset_id: uuid.UUID
    name: str
    platform: str
    version: int
    version_id: uuid.UUID
    etag: str
    updated_at: datetime

    @classmethod
    def of(cls, body: dict[str, Any]) -> Channel:
        return cls(
            uuid.UUID(body["asset_id"]),
            body["name"],
            body["platform"],
            body["version"],
            uuid.UUID(body["version_id"]),
            body["etag"],
            _when(body["updated_at"]),
        )


@dataclass(frozen=True)
class ChannelMove:
    from_version: int | None
    to_version: int
    row_version: int
    moved_by: str
    reason: str
    moved_at: datetime

    @classmethod
    def of(cls, body: dict[str, Any]) -> ChannelMove:
        return cls(
            body["from_version"],
            body["to_version"],
            body["row_version"],
            body["moved_by"],
            body["reason"],
            _when(body["moved_at"]),
        )


@dataclass(frozen=True)
class Upload:
    url: str
    upload_id: uuid.UUID
    asset_id: uuid.UUID
    length: int
    offset: int
    status: str  # receiving, completed, failed, terminated, expired
    version: int | None
    failure_reason: str | None
    expires_at: datetime

    @classmethod
    def of(cls, url: str, body: dict[str, Any]) -> Upload:
        return cls(
            url,
            uuid.UUID(body["upload_id"]),
            uuid.UUID(body["asset_id"]),
            body["length"],
            body["offset"],
            body["status"],
            body["version"],
            body["failure_reason"],
            _when(body["expires_at"]),
        )


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size_bytes: int
    sha256: str
    version: int | None  # the version a channel served (None when asked by number)
    resumed_from: int  # bytes already on disk that were kept
    not_modified: bool = False


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _time(value: str | None) -> datetime | None:
    return None if value is None else _when(value)


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def file_sha256(path: Path, progress: Progress | None = None) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest, done, total = hashlib.sha256(), 0, path.stat().st_size
    with path.open("rb") as src:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return digest.hexdigest()


_SEND_BYTES = 1 << 20


def _pieces(data: bytes) -> Iterator[bytes]:
    """``data`` in pieces of :data:`_SEND_BYTES`: httpcore sends a body given whole by
    ``buffer = buffer[n:]`` after each ``send``, which copies what is left every time (an
    8 MiB PATCH went at a few MB/s over a Unix socket, 64 MiB at 4.5 MB/s); a piece at a time
    bounds that copy."""
    view = memoryview(data)
    for start in range(0, len(view), _SEND_BYTES):
        yield bytes(view[start : start + _SEND_BYTES])


class AssetsClient:
    """Every ``/v1/content`` route of assets, versions, channels, uploads and downloads."""

    def __init__(self, transport: Transport) -> None:
        self.t = transport

    # ---- assets ------------------------------------------------------------------------

    def create_asset(
        self,
        kind: str,
        name: str,
        *,
        description: str = "",
        tags: list[str] | tuple[str, ...] = (),
        asset_id: uuid.UUID | None = None,
    ) -> Asset:
        """A new asset; its id is chosen here, so a retried create makes one asset."""
        body = {
            "asset_id": str(asset_id or uuid.uuid4()),
            "kind": kind,
            "name": name,
            "description": description,
            "tags": list(tags),
        }
        return Asset.of(self.t.request("POST", ASSETS, json=body, retry=True).json())

    def list_assets(
        self,
        *,
        kind: str | None = None,
        tag: str | None = None,
        q: str | None = None,
        include_archived: bool = False,
        limit: int = 50,
        after: str | None = None,
    ) -> Page[Asset]:
        params = {"kind": kind, "tag": tag, "q": q, "limit": limit, "after": after}
        params = {k: v for k, v in params.items() if v is not None}
        if include_archived:
            params["include_archived"] = "true"
        body = self.t.request("GET", ASSETS, params=params).json()
        return Page([Asset.of(a) for a in body["items"]], body["next_cursor"])

    def iter_assets(self, **filters: Any) -> Iterator[Asset]:
        """Every asset the filters select, page after page."""
        after = None
        while True:
            page = self.list_assets(**filters, after=after)
            yield from page.items
            if not (after := page.next_cursor):
                return

    def get_asset(self, asset_id: uuid.UUID | str) -> Asset:
        return Asset.of(self.t.request("GET", f"{ASSETS}/{asset_id}").json())

    def update_asset(
        self,
        asset_id: uuid.UUID | str,
        etag: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
    ) -> Asset:
        """Change an asset as read at ``etag`` (412 ``StrideAPIError`` when it changed since)."""
        body = {"name": name, "description": description, "tags": tags}
        body = {k: v for k, v in body.items() if v is not None}
        response = self.t.request(
            "PATCH", f"{ASSETS}/{asset_id}", json=body, headers={"If-Match": etag}, retry=True
        )
        return Asset.of(response.json())

    def archive_asset(self, asset_id: uuid.UUID | str, etag: str) -> Asset:
        response = self.t.request(
            "DELETE", f"{ASSETS}/{asset_id}", headers={"If-Match": etag}, retry=True
        )
        return Asset.of(response.json())

    # ---- versions and channels -----------------------------------------------------------

    def list_versions(
        self, asset_id: uuid.UUID | str, *, limit: int = 50, after: str | None = None
    ) -> Page[Version]:
        params: dict[str, Any] = {"limit": limit, **({"after": after} if after else {})}
        body = self.t.request("GET", f"{ASSETS}/{asset_id}/versions", params=params).json()
        return Page([Version.of(v) for v in body["items"]], body["next_cursor"])

    def get_version(self, asset_id: uuid.UUID | str, version: int) -> Version:
        return Version.of(self.t.request("GET", f"{ASSETS}/{asset_id}/versions/{version}").json())

    def list_channels(
        self, asset_id: uuid.UUID | str, *, name: str | None = None, platform: str | None = None
    ) -> list[Channel]:
        params = {k: v for k, v in {"name": name, "platform": platform}.items() if v}
        body = self.t.request("GET", f"{ASSETS}/{asset_id}/channels", params=params).json()
        return [Channel.of(c) for c in body]

    def get_channel(
        self, asset_id: uuid.UUID | str, name: str, *, platform: str = "all"
    ) -> Channel:
        path = f"{ASSETS}/{asset_id}/channels/{name}"
        return Channel.of(self.t.request("GET", path, params={"platform": platform}).json())

    def move_channel(
        self,
        asset_id: uuid.UUID | str,
        name: str,
        version: int,
        *,
        etag: str | None = None,
        platform: str = "all",
        reason: str = "",
    ) -> Channel:
        """Point a channel at ``version``: ``etag`` is the channel's as read (None for a new
        channel); a stale one raises a 412 ``StrideAPIError``."""
        headers = {"If-Match": etag} if etag else {}
        response = self.t.request(
            "PUT",
            f"{ASSETS}/{asset_id}/channels/{name}",
            params={"platform": platform},
            json={"version": version, "reason": reason},
            headers=headers,
            retry=True,
        )
        return Channel.of(response.json())

    def channel_history(
        self,
        asset_id: uuid.UUID | str,
        name: str,
        *,
        platform: str = "all",
        limit: int = 50,
        after: str | None = None,
    ) -> Page[ChannelMove]:
        params: dict[str, Any] = {"platform": platform, "limit": limit}
        if after:
            params["after"] = after
        path = f"{ASSETS}/{asset_id}/channels/{name}/history"
        body = self.t.request("GET", path, params=params).json()
        return Page([ChannelMove.of(m) for m in body["items"]], body["next_cursor"])

    # ---- uploads (tus 1.0) ---------------------------------------------------------------

    def upload_capabilities(self) -> dict[str, str]:
        """What the server's tus endpoint speaks (``OPTIONS``): versions, extensions, limit."""
        response = self.t.request("OPTIONS", UPLOADS, retry=True)
        return {k.title(): v for k, v in response.headers.items() if k.lower().startswith("tus-")}

    def create_upload(
        self,
        asset_id: uuid.UUID | str,
        size: int,
        sha256: str,
        *,
        content_type: str = "application/octet-stream",
        filename: str = "",
    ) -> str:
        """A new upload of ``size`` bytes whose SHA-256 is ``sha256``; its URL."""
        fields = {"asset_id": str(asset_id), "sha256": sha256, "content_type": content_type}
        if filename:
            fields["filename"] = filename
        headers = {
            **TUS,
            "Upload-Length": str(size),
            "Upload-Metadata": ",".join(f"{k} {_b64(v)}" for k, v in fields.items()),
        }
        response = self.t.request("POST", UPLOADS, headers=headers)
        return response.headers["Location"]

    def upload_offset(self, url: str) -> int:
        """Where the server says an upload resumes (``HEAD``)."""
        return int(self.t.request("HEAD", url, headers=TUS).headers["Upload-Offset"])

    def get_upload(self, url: str) -> Upload:
        return Upload.of(url, self.t.request("GET", url).json())

    def terminate_upload(self, url: str) -> None:
        self.t.request("DELETE", url, headers=TUS, retry=True)

    def upload(
        self,
        asset_id: uuid.UUID | str,
        path: Path,
        *,
        content_type: str | None = None,
        resume_url: str | None = None,
        on_created: Callable[[str], None] | None = None,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        progress: Progress | None = None,
        sha256: str | None = None,
    ) -> Upload:
        """Upload a file as the asset's next version and wait for the version.

        ``resume_url`` continues an upload created before (from the server's offset);
        otherwise one is created and ``on_created`` is told its URL (keep it to resume after
        a crash). Each PATCH carries a SHA-256 ``Upload-Checksum``; a failed one is resumed
        from the offset the server reports (``HEAD``), waiting ``Retry-After`` on 429/503.
        The next chunk is read and hashed while one is sent: two chunks in memory at most.
        """
        size = path.stat().st_size
        digest = None
        if resume_url is None:
            digest = sha256 or file_sha256(path)
            guessed = content_type or mimetypes.guess_type(path.name)[0]
            url = self.create_upload(
                asset_id,
                size,
                digest,
                content_type=guessed or "application/octet-stream",
                filename=path.name,
            )
            if on_created:
                on_created(url)
        else:
            url = resume_url
        offset = self.upload_offset(url)
        if progress:
            progress(offset, size)
        failures = 0
        known = bytes.fromhex(digest) if digest else None

        def read(start: int) -> _Chunk:
            """The chunk at ``start`` and its SHA-256 (in a worker thread: hashlib releases
            the GIL, so the next chunk is read and hashed while this one is sent)."""
            with path.open("rb") as src:
                src.seek(start)
                data = src.read(chunk_bytes)
            # The whole file in one PATCH: its checksum is the file's, known already.
            whole = known if known and len(data) == size else None
            return _Chunk(start, data, whole or hashlib.sha256(data).digest())

        with ThreadPoolExecutor(1, thread_name_prefix="stride-upload") as pool:
            ahead = pool.submit(read, offset) if offset < size else None
            while ahead is not None and offset < size:  # an empty file is complete at once
                chunk = ahead.result()
                if chunk.offset != offset:  # resumed elsewhere: read from there
                    ahead = pool.submit(read, offset)
                    continue
                following = offset + len(chunk.data)
                ahead = pool.submit(read, following) if following < size else None
                try:
                    offset = self._patch(url, offset, chunk.data, chunk.sha256)
                    failures = 0
                except _Resume as resume:
                    failures += 1
                    if failures > self.t.retries:
                        raise resume.cause from None
                    self.t.sleep(resume.wait_s or self.t.backoff(failures - 1))
                    offset = self.upload_offset(url)
                    if ahead is None and offset < size:
                        ahead = pool.submit(read, offset)
                if progress:
                    progress(offset, size)
        return self.get_upload(url)

    def _patch(self, url: str, offset: int, chunk: bytes, sha256: bytes) -> int:
        checksum = base64.b64encode(sha256).decode()
        headers = {
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            "Upload-Checksum": f"sha256 {checksum}",
        }
        headers["Content-Length"] = str(len(chunk))
        try:
            response = self.t.http.request("PATCH", url, content=_pieces(chunk), headers=headers)
        except httpx.TransportError as exc:
            raise _Resume(exc, None) from exc
        if response.status_code == 204:
            return int(response.headers["Upload-Offset"])
        error = StrideAPIError.from_response(response)
        if response.status_code in RETRIED_STATUSES:
            raise _Resume(error, retry_after_s(response, 0.0) or None)
        if response.status_code == 409 and error.code == "offset_mismatch":
            raise _Resume(error, 0.0)  # another attempt got further: ask where
        if response.status_code == 460 and "Upload-Checksum" in error.detail:
            raise _Resume(error, 0.0)  # damaged on the way: send it again
        raise error

    # ---- downloads ---------------------------------------------------------------------

    def download(
        self,
        asset_id: uuid.UUID | str,
        dest: Path,
        *,
        version: int | None = None,
        channel: str | None = None,
        platform: str = "all",
        progress: Progress | None = None,
        if_none_match: str | None = None,
    ) -> Downloaded:
        """Download a version (by number) or what a channel serves to ``dest``.

        Bytes go to ``dest.part`` first; a download cut off resumes from there with ``Range``
        and ``If-Range`` (the ETag kept beside it in ``dest.part.etag``), so only the missing
        bytes travel, and starts over when the bytes changed (a channel moved). The whole
        file's SHA-256 is checked against the ETag before ``dest`` is replaced.
        ``if_none_match`` (the SHA-256 of the copy you have, quoted) answers
        ``not_modified`` without a transfer when it is still current.
        """
        if (version is None) == (channel is None):
            raise ValueError("give exactly one of version or channel")
        if version is not None:
            path, params = f"{ASSETS}/{asset_id}/versions/{version}/download", None
        else:
            path, params = (
                f"{ASSETS}/{asset_id}/channels/{channel}/download",
                {"platform": platform},
            )
        part = dest.with_name(dest.name + ".part")
        tag_file = dest.with_name(dest.name + ".part.etag")
        have = part.stat().st_size if part.exists() and tag_file.exists() else 0
        headers: dict[str, str] = {}
        if have:
            headers = {"Range": f"bytes={have}-", "If-Range": tag_file.read_text().strip()}
        elif if_none_match:
            headers = {"If-None-Match": if_none_match}
        with self.t.stream("GET", path, params=params, headers=headers, ok=(304, 416)) as response:
            etag = response.headers.get("ETag", "")
            served = response.headers.get("Stride-Version")
            if response.status_code == 304:
                return Downloaded(dest, 0, etag.strip('"'), None, 0, not_modified=True)
            if response.status_code == 416:  # the part is whole already (or stale): start over
                response.read()
                part.unlink(missing_ok=True)
                tag_file.unlink(missing_ok=True)
                return self.download(
                    asset_id,
                    dest,
                    version=version,
                    channel=channel,
                    platform=platform,
                    progress=progress,
                )
            resumed = response.status_code == 206
            kept = have if resumed else 0
            total = kept + int(response.headers.get("Content-Length", "0"))
            tag_file.write_text(etag)
            digest = hashlib.sha256()
            if resumed:
                with part.open("rb") as src:
                    while chunk := src.read(1 << 20):
                        digest.update(chunk)
            done = kept
            with part.open("ab" if resumed else "wb") as out:
                for chunk in response.iter_bytes():  # as received: no re-chunking copy
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        sha = digest.hexdigest()
        if etag.strip('"') != sha:
            part.unlink(missing_ok=True)
            tag_file.unlink(missing_ok=True)
            raise StrideAPIError(
                0, "checksum_mismatch", f"downloaded bytes hash to {sha}, not the ETag {etag}"
            )
        part.replace(dest)
        tag_file.unlink(missing_ok=True)
        return Downloaded(dest, done, sha, int(served) if served else None, kept)


@dataclass(frozen=True)
class _Chunk:
    offset: int
    data: bytes
    sha256: bytes


class _Resume(Exception):
    """A PATCH that did not go through and may be resumed after ``wait_s``."""

    def __init__(self, cause: Exception, wait_s: float | None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.wait_s = wait_s
