"""The API's one ETag plumbing (RFC 9110): If-Match parsed strongly into the domain's
precondition, malformed ones refused with 400, If-None-Match compared weakly for 304."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from api.etags import not_modified, precondition
from core.platform.versions import ANY_VERSION, Precondition, at_version


def test_if_match_names_the_versions_read_in_either_tag_form() -> None:
    assert precondition(None) is None
    assert precondition("*") == ANY_VERSION
    assert precondition('"7"') == at_version(7)
    assert precondition(' "r7" ') == at_version(7)  # the assets' tag before one plumbing
    assert precondition('"3", "r4"') == at_version(3, 4)


def test_if_match_compares_strongly_and_foreign_tags_admit_nothing() -> None:
    assert precondition('W/"7"') == Precondition()  # a weak tag never matches: 412
    assert precondition('"v7"') == Precondition()
    assert precondition('"0123456789"') == Precondition()  # beyond any row version
    assert precondition('"7", W/"8"') == at_version(7)


@pytest.mark.parametrize("header", ["7", "r7", '"7', '"7" "8"', "", '"7",,x'])
def test_if_match_that_is_no_list_of_etags_is_a_400(header: str) -> None:
    with pytest.raises(HTTPException) as refused:
        precondition(header)
    assert refused.value.status_code == 400 and "If-Match" in str(refused.value.detail)


def test_if_none_match_naming_the_current_version_is_a_304_with_its_etag() -> None:
    for header in ['"7"', 'W/"7"', '"r7"', '"1", "7"', "*"]:
        answer = not_modified(header, 7)
        assert answer is not None and answer.status_code == 304
        assert answer.headers["ETag"] == '"7"' and answer.body == b""
    for header in [None, '"6"', "garbage", '"7']:
        assert not_modified(header, 7) is None
