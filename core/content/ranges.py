"""HTTP range and conditional request rules of downloads, pure (RFC 9110 sections 13, 14).

A download answers one byte range at most: a ``Range`` with several ranges, or one that
does not parse, is ignored (the whole representation is sent, as the RFC allows).
"""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

_RANGE = re.compile(r"^bytes=\s*(\d*)\s*-\s*(\d*)\s*$")


class Unsatisfiable(Exception):
    """The one range asked for lies outside the representation (416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive byte positions of a single ``Range``; None for the whole."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or (not match[1] and not match[2]):
        return None
    first, last = match[1], match[2]
    if not first:  # suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - length), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # syntactically invalid: ignored
    if start >= size:
        raise Unsatisfiable
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


def _tags(header: str) -> list[str]:
    return [t.strip() for t in header.split(",") if t.strip()]


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def none_match(header: str | None, etag: str) -> bool:
    """``If-None-Match`` matches (weak comparison): a GET answers 304."""
    if not header:
        return False
    tags = _tags(header)
    return "*" in tags or any(_opaque(t) == _opaque(etag) for t in tags)


def if_match(header: str | None, etag: str) -> bool:
    """``If-Match`` matches (strong comparison)."""
    if header is None:
        return True
    tags = _tags(header)
    return "*" in tags or any(t == etag and not t.startswith("W/") for t in tags)


def range_applies(if_range: str | None, etag: str, last_modified: str) -> bool:
    """Whether ``Range`` is honoured under ``If-Range``: its strong ETag or its date must be
    the current one; otherwise the whole representation is sent."""
    if not if_range:
        return True
    value = if_range.strip()
    if value.startswith(('"', "W/")):
        return value == etag  # a weak tag never matches (strong comparison)
    try:
        return parsedate_to_datetime(value) == parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False
