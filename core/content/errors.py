"""The content domain's refusals, each a kind of :mod:`core.platform.errors` with a code of
its own (``api/errors.py`` gives each code its HTTP status)."""

from __future__ import annotations

from core.platform.errors import Conflict, Invalid, NotFound


class AssetNotFound(NotFound):
    code = "not_found"


class BadHeader(Invalid):
    """A protocol header is missing or malformed (400)."""

    code = "bad_request"


class NameTaken(Conflict):
    code = "conflict"


class OffsetMismatch(Conflict):
    """A PATCH's ``Upload-Offset`` is not the upload's offset (409): HEAD it and resume."""

    code = "offset_mismatch"


class ChecksumMismatch(Invalid):
    """The bytes are not those the client's checksum describes (tus: 460)."""

    code = "checksum_mismatch"


class UploadGone(NotFound):
    """The upload was terminated, expired or failed (410)."""

    code = "gone"


class TooLarge(Invalid):
    code = "too_large"


class UnsupportedMediaType(Invalid):
    code = "unsupported_media_type"
