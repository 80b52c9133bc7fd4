"""Object storage of asset bytes behind one interface: a local folder (the lake's raw zone by
default) or an S3 bucket (boto3), chosen by the content root of the settings.

Keys are relative paths under the root, in the raw zone's conventions (``game_id=...``
partitions, content-addressed files):

* ``game_id=<game>/<sha256>``: a version's bytes, named by their SHA-256, so identical bytes
  uploaded twice for a game are stored once and a stored object never changes;
* ``_uploads/<upload_id>/<offset>-<nonce>``: the parts an incomplete upload has received, one
  per PATCH; composed into ``_uploads/<upload_id>/assembled``, then moved to the version's
  key once the SHA-256 is the declared one. Locally a single part becomes the object by a
  hard link and several are concatenated in the kernel (``os.copy_file_range``), no byte
  through Python; the SHA-256 is the one the API took while the bytes arrived, or read
  back from the composed file when it has none (another process received a part).

Every method is blocking (the API calls them in worker threads) and streams: nothing holds a
whole object in memory.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from core.platform.config import ContentSettings

CHUNK_BYTES = 1 << 20
# A download hands the server this much per read: each read is a hop to a worker thread
# and a write to uvicorn's transport, and 1 MiB ones cost more hops than bytes.
_READ_BYTES = 4 << 20
_COPY_BYTES = 1 << 30  # per os.copy_file_range call (the kernel may copy less)


def _copy_all(src: int, dst: int) -> None:
    """Append the whole file ``src`` to ``dst`` in the kernel (no bytes through Python)."""
    while os.copy_file_range(src, dst, _COPY_BYTES):
        pass


def file_sha256(path: Path) -> str:
    """The SHA-256 (hex) of a local file, read in large blocks (hashlib releases the GIL)."""
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as src:
        while chunk := src.read(8 * CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_KEY = re.compile(r"^[A-Za-z0-9_=.-]+(/[A-Za-z0-9_=.-]+)*$")


def version_key(game_id: str, sha256: str) -> str:
    """Where the bytes of a version of ``game_id`` with this SHA-256 are kept."""
    if not _GAME.match(game_id) or not _SHA256.match(sha256):
        raise ValueError(f"no storage key for game {game_id!r} and sha256 {sha256!r}")
    return f"game_id={game_id}/{sha256}"


def upload_prefix(upload_id: uuid.UUID) -> str:
    return f"_uploads/{upload_id}"


def upload_part_key(upload_id: uuid.UUID, offset: int) -> str:
    """A new key for a part starting at ``offset`` (unique: a lost race leaves no clash)."""
    return f"{upload_prefix(upload_id)}/{offset:020d}-{uuid.uuid4().hex[:12]}"


def assembled_key(upload_id: uuid.UUID) -> str:
    return f"{upload_prefix(upload_id)}/assembled"


def check_key(key: str) -> str:
    """``key`` when it is a plain relative path (no ``..``, no leading ``/``)."""
    if not _KEY.match(key) or any(p in (".", "..") for p in key.split("/")):
        raise ValueError(f"not a storage key: {key!r}")
    return key


class ObjectStorage(Protocol):
    """What the content domain needs of a store; see :class:`LocalStorage`, :class:`S3Storage`."""

    root: str
    spool_dir: Path  # where the API spools a PATCH body before :meth:`put_file`

    def put_file(self, key: str, path: Path) -> None:
        """Store the local file ``path`` at ``key``; the file is consumed (moved or deleted)."""

    def compose(self, key: str, parts: Sequence[str], sha256: str | None = None) -> tuple[str, int]:
        """Write the concatenation of ``parts`` to ``key``: its SHA-256 (hex) and size.
        ``sha256``, when given, is that of the parts' bytes as they were received (so a
        store that can compose without reading the bytes need not hash them again)."""
        ...

    def promote(self, source: str, target: str) -> None:
        """Move ``source`` to ``target``; when ``target`` exists (same bytes: content-addressed),
        just delete ``source``."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Delete one object (no error when it is not there)."""

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes ``start..end`` (inclusive; ``end`` None: to the end), in chunks."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix/``; how many there were."""
        ...


class LocalStorage:
    """A folder: the lake's raw zone locally (``<state>/lake/raw/content``)."""

    def __init__(self, root: str | Path) -> None:
        self.path = Path(root).resolve()
        self.root = str(self.path)
        self.spool_dir = self.path / "_spool"

    def _file(self, key: str) -> Path:
        return self.path / check_key(key)

    def put_file(self, key: str, path: Path) -> None:
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)  # a rename within one filesystem (the spool is inside)

    def compose(self, key: str, parts: Sequence[str], sha256: str | None = None) -> tuple[str, int]:
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            if len(parts) == 1:
                # The one part is the object: a second name for its bytes, no copy. Parts
                # never change once stored, and the part keeps its name, so a composition
                # cut off midway can run again.
                os.link(self._file(parts[0]), tmp)
                with tmp.open("rb") as fh:
                    os.fsync(fh.fileno())
            else:
                with tmp.open("wb") as out:
                    for part in parts:
                        with self._file(part).open("rb") as src:
                            _copy_all(src.fileno(), out.fileno())
                    os.fsync(out.fileno())
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        size = target.stat().st_size
        if sha256 is None:
            sha256 = file_sha256(target)
        return sha256, size

    def promote(self, source: str, target: str) -> None:
        src, dst = self._file(source), self._file(target)
        if dst.exists():
            src.unlink(missing_ok=True)
            return
        dst.parent.mkdir(parents=True, exist_ok=True)
        src.replace(dst)

    def exists(self, key: str) -> bool:
        return self._file(key).is_file()

    def delete(self, key: str) -> None:
        self._file(key).unlink(missing_ok=True)

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        with self._file(key).open("rb", buffering=0) as src:
            src.seek(start)
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                chunk = src.read(_READ_BYTES if left is None else min(_READ_BYTES, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def delete_prefix(self, prefix: str) -> int:
        folder = self._file(prefix)
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder, ignore_errors=True)
        return count


class _ConcatReader:
    """A file-like ``read(n)`` over several S3 objects in turn, hashing what it hands out
    (boto3's managed upload reads it sequentially into its multipart parts)."""

    def __init__(self, client: Any, bucket: str, keys: Sequence[str]) -> None:
        self._client, self._bucket, self._keys = client, bucket, list(keys)
        self._body: Any = None
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while n < 0 or len(out) < n:
            if self._body is None:
                if not self._keys:
                    break
                key = self._keys.pop(0)
                self._body = self._client.get_object(Bucket=self._bucket, Key=key)["Body"]
            chunk = self._body.read(CHUNK_BYTES if n < 0 else min(CHUNK_BYTES, n - len(out)))
            if not chunk:
                self._body.close()
                self._body = None
                continue
            out += chunk
        data = bytes(out)
        self.digest.update(data)
        self.size += len(data)
        return data


class S3Storage:
    """An S3 bucket and prefix (production; moto's server in the tests), through boto3."""

    def __init__(self, root: str, settings: ContentSettings) -> None:
        import boto3
        from botocore.config import Config

        if not root.startswith("s3://"):
            raise ValueError(f"not an s3:// root: {root!r}")
        self.root = root
        self.bucket, _, prefix = root[len("s3://") :].partition("/")
        self.prefix = prefix.strip("/")
        credentials = {}
        if settings.lake_s3_access_key_id and settings.lake_s3_secret_access_key:
            credentials = {
                "aws_access_key_id": settings.lake_s3_access_key_id.get_secret_value(),
                "aws_secret_access_key": settings.lake_s3_secret_access_key.get_secret_value(),
            }
        style = "path" if settings.lake_s3_uses_path_style else "virtual"
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.lake_s3_endpoint,
            region_name=settings.lake_s3_region,
            config=Config(s3={"addressing_style": style}, retries={"mode": "standard"}),
            **credentials,
        )
        self.spool_dir = Path(tempfile.gettempdir()) / "stride-content-spool"

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_file(self, key: str, path: Path) -> None:
        try:
            self.client.upload_file(str(path), self.bucket, self._key(key))
        finally:
            path.unlink(missing_ok=True)

    def compose(self, key: str, parts: Sequence[str], sha256: str | None = None) -> tuple[str, int]:
        # S3 cannot concatenate small objects in place: the bytes pass through here once,
        # and hashing them on the way costs little beside that transfer.
        reader = _ConcatReader(self.client, self.bucket, [self._key(p) for p in parts])
        self.client.upload_fileobj(reader, self.bucket, self._key(key))
        return reader.digest.hexdigest(), reader.size

    def promote(self, source: str, target: str) -> None:
        if not self.exists(target):
            self.client.copy(
                {"Bucket": self.bucket, "Key": self._key(source)}, self.bucket, self._key(target)
            )
        self.client.delete_object(Bucket=self.bucket, Key=self._key(source))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        span = f"bytes={start}-{'' if end is None else end}"
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(key), Range=span)["Body"]
        try:
            yield from body.iter_chunks(CHUNK_BYTES)
        finally:
            body.close()

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix) + "/"
        )
        for page in pages:
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
                count += len(keys)
        return count


def clean_spool(store: ObjectStorage, older_than_s: float, now_s: float | None = None) -> int:
    """Delete spool files left by PATCHes that never finished (an API process killed midway):
    any file older than ``older_than_s`` (a PATCH lives at most the upload timeout)."""
    import time

    if not store.spool_dir.is_dir():
        return 0
    cutoff = (time.time() if now_s is None else now_s) - older_than_s
    count = 0
    for path in store.spool_dir.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                count += 1
        except FileNotFoundError:  # its PATCH finished meanwhile
            continue
    return count


_STORES: dict[tuple[str, str | None], ObjectStorage] = {}


def storage_for(settings: ContentSettings) -> ObjectStorage:
    """The store of the settings' content root (one per root and endpoint per process)."""
    root = settings.content_root
    key = (root, settings.lake_s3_endpoint)
    if key not in _STORES:
        _STORES[key] = S3Storage(root, settings) if root.startswith("s3://") else LocalStorage(root)
    return _STORES[key]
