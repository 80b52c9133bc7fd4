"""The one optimistic-concurrency rule: what a precondition admits, and its refusals."""

from __future__ import annotations

import pytest

from core.platform.versions import (
    ANY_VERSION,
    Precondition,
    StaleVersion,
    VersionRequired,
    at_version,
    check_version,
    etag,
)


def test_a_precondition_admits_the_versions_read_and_star_admits_any() -> None:
    assert at_version(3).admits(3) and not at_version(3).admits(4)
    assert at_version(3, 4).admits(4)
    assert ANY_VERSION.admits(1) and ANY_VERSION.admits(10**9)
    assert not Precondition().admits(1)  # a tag this API never gave admits nothing


def test_a_stale_write_is_refused_with_412_naming_the_current_etag() -> None:
    check_version(7, at_version(7), "asset a", required=True)
    with pytest.raises(StaleVersion, match=r'asset a changed .*ETag is now "8"') as stale:
        check_version(8, at_version(7), "asset a", required=True)
    assert stale.value.code == "precondition_failed" and stale.value.current == 8


def test_a_missing_precondition_is_428_only_where_the_row_requires_one() -> None:
    check_version(8, None, "item 'x'", required=False)  # the last write wins
    with pytest.raises(VersionRequired, match="send If-Match") as required:
        check_version(8, None, "asset a", required=True)
    assert required.value.code == "precondition_required"


def test_the_etag_of_a_version_is_its_number_quoted() -> None:
    assert etag(7) == '"7"'
