"""The tus 1.0 resumable upload protocol's headers, pure: parsing and writing them.

The server speaks tus 1.0.0 with the ``creation``, ``checksum`` (``sha1``, ``sha256``),
``expiration`` and ``termination`` extensions (https://tus.io/protocols/resumable-upload).
``Upload-Metadata`` carries what Stride needs to make a version of the bytes:
``asset_id``, ``sha256`` (hex, of the whole file), optional ``content_type`` and
``filename``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from core.content.errors import BadHeader

TUS_VERSION = "1.0.0"
EXTENSIONS = ("creation", "checksum", "expiration", "termination")
CHECKSUM_ALGORITHMS = ("sha1", "sha256")
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"

_DIGITS = re.compile(r"^[0-9]{1,19}$")
_META_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+(\s*;\s*[\w.+-]+=[\w.+\"-]+)*$")
MAX_METADATA_BYTES = 4096


def capability_headers(max_size: int) -> dict[str, str]:
    """What ``OPTIONS`` answers: the versions, extensions, size limit and checksums."""
    return {
        "Tus-Resumable": TUS_VERSION,
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": ",".join(EXTENSIONS),
        "Tus-Max-Size": str(max_size),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
    }


def supported_version(header: str | None) -> bool:
    return header == TUS_VERSION


def parse_length(header: str | None, name: str) -> int:
    """A non-negative integer header (``Upload-Length``, ``Upload-Offset``)."""
    if header is None:
        raise BadHeader(f"missing {name} header")
    if not _DIGITS.match(header.strip()):
        raise BadHeader(f"{name} must be a non-negative integer, not {header[:40]!r}")
    return int(header.strip())


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (the value optional)."""
    if not header:
        return {}
    if len(header) > MAX_METADATA_BYTES:
        raise BadHeader(f"Upload-Metadata longer than {MAX_METADATA_BYTES} characters")
    out: dict[str, str] = {}
    for pair in header.split(","):
        fields = pair.strip().split(" ")
        if len(fields) > 2 or not _META_KEY.match(fields[0]):
            raise BadHeader(f"Upload-Metadata: {pair.strip()[:40]!r} is not 'key base64value'")
        key = fields[0]
        if key in out:
            raise BadHeader(f"Upload-Metadata: key {key!r} given twice")
        value = ""
        if len(fields) == 2:
            try:
                value = base64.b64decode(fields[1], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise BadHeader(
                    f"Upload-Metadata: the value of {key!r} is not base64 of UTF-8"
                ) from None
        if any(c in value for c in "\x00\r\n"):
            raise BadHeader(f"Upload-Metadata: the value of {key!r} holds a control character")
        out[key] = value
    return out


def encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" if value else key
        for key, value in metadata.items()
    )


@dataclass(frozen=True)
class UploadRequest:
    """What a creation request declares about the file."""

    length: int
    sha256: str
    asset_id: str
    content_type: str
    filename: str
    metadata: dict[str, str]


def creation_request(length_header: str | None, metadata_header: str | None) -> UploadRequest:
    """The creation request's ``Upload-Length`` and ``Upload-Metadata``, checked."""
    length = parse_length(length_header, "Upload-Length")
    metadata = parse_metadata(metadata_header)
    asset_id = metadata.get("asset_id", "")
    if not asset_id:
        raise BadHeader("Upload-Metadata must name the asset: asset_id <base64 of its id>")
    sha256 = metadata.get("sha256", "").lower()
    if not _SHA256_HEX.match(sha256):
        raise BadHeader(
            "Upload-Metadata must declare the whole file's SHA-256: sha256 <base64 of 64 hex "
            "digits>; the version is made only when the bytes match it"
        )
    content_type = metadata.get("content_type") or "application/octet-stream"
    if len(content_type) > 255 or not _CONTENT_TYPE.match(content_type):
        raise BadHeader(f"Upload-Metadata: content_type {content_type[:60]!r} is not a media type")
    filename = metadata.get("filename", "")
    if len(filename) > 255 or any(c in filename for c in "/\\\r\n\0"):
        raise BadHeader("Upload-Metadata: filename must be a plain name of at most 255 characters")
    return UploadRequest(length, sha256, asset_id, content_type, filename, metadata)


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    def hasher(self) -> Any:
        return hashlib.new(self.algorithm)

    def matches(self, hasher: Any) -> bool:
        return bool(hasher.digest() == self.digest)


def parse_checksum(header: str | None) -> Checksum | None:
    """``Upload-Checksum: <algorithm> <base64 digest>`` of one PATCH's bytes."""
    if header is None:
        return None
    fields = header.strip().split(" ")
    if len(fields) != 2:
        raise BadHeader("Upload-Checksum must be '<algorithm> <base64 digest>'")
    algorithm, encoded = fields[0].lower(), fields[1]
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise BadHeader(
            f"Upload-Checksum algorithm {algorithm[:20]!r} is not supported; use one of "
            f"{', '.join(CHECKSUM_ALGORITHMS)} (Tus-Checksum-Algorithm)"
        )
    try:
        digest = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise BadHeader("Upload-Checksum digest is not base64") from None
    if len(digest) != hashlib.new(algorithm).digest_size:
        raise BadHeader(f"Upload-Checksum digest is not the size of a {algorithm} digest")
    return Checksum(algorithm, digest)


def http_date(moment: datetime) -> str:
    """RFC 9110 IMF-fixdate, as ``Upload-Expires`` and ``Last-Modified`` are written."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)
