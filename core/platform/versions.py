"""Optimistic concurrency, one rule for every versioned row (assets, channels, catalog
definitions, packs, achievements): what a writer expects of a row's version, the
comparison, and its two refusals. Pure.

The HTTP side (``ETag``, ``If-Match`` and ``If-None-Match`` parsed into a
:class:`Precondition`) is the edge's, :mod:`api.etags`; the rule that a stale write changes
nothing, and when a write must name a version at all, is the domain's, here.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.platform.errors import Conflict


def etag(version: int) -> str:
    """The strong ``ETag`` of a row at ``version`` (RFC 9110 section 8.8.3): its number,
    quoted. The refusals below name it, so that a caller can act on them."""
    return f'"{version}"'


@dataclass(frozen=True)
class Precondition:
    """The versions a writer read (``If-Match``): the write goes ahead only if the row is
    still at one of them. ``any_version`` (``If-Match: *``) admits any existing row; an
    empty ``versions`` (a tag this API never gave) admits none."""

    versions: frozenset[int] = frozenset()
    any_version: bool = False

    def admits(self, current: int) -> bool:
        return self.any_version or current in self.versions


ANY_VERSION = Precondition(any_version=True)


def at_version(*versions: int) -> Precondition:
    """The precondition of a writer that read the row at ``versions``."""
    return Precondition(frozenset(versions))


class StaleVersion(Conflict):
    """The row is no longer at a version the writer read (412); nothing was changed.
    ``current`` is its version now (None: the row does not exist)."""

    code = "precondition_failed"

    def __init__(self, message: str, current: int | None) -> None:
        super().__init__(message)
        self.current = current


class VersionRequired(Conflict):
    """A write to an existing row that names no version, where the row requires one (428)."""

    code = "precondition_required"


def stale(what: str, current: int) -> StaleVersion:
    return StaleVersion(
        f"{what} changed since you read it (its ETag is now {etag(current)}): read it again,"
        " then retry with its new ETag",
        current,
    )


def check_version(
    current: int, expected: Precondition | None, what: str, *, required: bool
) -> None:
    """Refuse a write to ``what``, a row at version ``current``, unless ``expected`` admits
    it. Without a precondition the write goes ahead (last write wins) unless ``required``."""
    if expected is None:
        if required:
            raise VersionRequired(
                f"{what} exists: send If-Match with the ETag you read (GET it first)"
            )
        return
    if not expected.admits(current):
        raise stale(what, current)
