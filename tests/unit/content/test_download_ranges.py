"""Range and conditional request rules of downloads, pure (RFC 9110)."""

from __future__ import annotations

import pytest

from core.content.ranges import Unsatisfiable, if_match, none_match, parse_range, range_applies

TAG = '"abc"'
DATE = "Tue, 01 Dec 2026 10:00:00 GMT"


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=5-9", (5, 9)),
        (None, None),
        ("", None),
        ("bytes=0-1,5-6", None),  # several ranges: the whole file
        ("bytes=9-5", None),  # invalid: ignored
        ("items=0-5", None),
        ("bytes=-", None),
    ],
)
def test_one_range_is_honoured_others_are_ignored(header: str | None, span) -> None:
    assert parse_range(header, 1000) == span


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=1000-", 1000), ("bytes=-0", 1000), ("bytes=-1", 0)]
)
def test_a_range_outside_the_file_is_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


def test_if_none_match_compares_weakly_and_if_match_strongly() -> None:
    assert none_match(TAG, TAG) and none_match(f'"x", W/{TAG}', TAG) and none_match("*", TAG)
    assert not none_match('"x"', TAG) and not none_match(None, TAG)
    assert if_match(None, TAG) and if_match(TAG, TAG) and if_match("*", TAG)
    assert not if_match(f"W/{TAG}", TAG) and not if_match('"x"', TAG)


def test_if_range_needs_the_current_strong_tag_or_date() -> None:
    assert range_applies(None, TAG, DATE)
    assert range_applies(TAG, TAG, DATE) and not range_applies('"old"', TAG, DATE)
    assert not range_applies(f"W/{TAG}", TAG, DATE)
    assert range_applies(DATE, TAG, DATE)
    assert not range_applies("Tue, 01 Dec 2026 09:00:00 GMT", TAG, DATE)
    assert not range_applies("yesterday", TAG, DATE)
