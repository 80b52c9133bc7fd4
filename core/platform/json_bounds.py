"""Bounds for free-form JSON that clients store and others read back (metadata).

A document is storable when it is plain JSON (no NaN or infinities, which PostgreSQL's
``jsonb`` and every JSON reader refuse), valid Unicode (a lone surrogate cannot be encoded
to UTF-8), not nested deeper than ``max_depth`` (deep nesting breaks recursive readers and
serializers) and at most ``max_bytes`` once encoded.
"""

from __future__ import annotations

import json
from typing import Any


def json_problem(value: Any, *, max_bytes: int, max_depth: int, name: str) -> str | None:
    """Why ``value`` cannot be stored as ``name``, or None. Never recurses."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                return f"{name} is nested deeper than {max_depth} levels"
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except ValueError:
        return f"{name} must not contain NaN or infinite numbers (JSON has none)"
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:
        return f"{name} must be valid Unicode text (it holds a lone surrogate)"
    if len(encoded) > max_bytes:
        return f"{name} is larger than {max_bytes} bytes of JSON"
    if b"\\u0000" in encoded or b"\x00" in encoded:
        return f"{name} must not contain NUL characters"
    return None
