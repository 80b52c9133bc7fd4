"""List page mechanics: cursors, sort key values, estimated counts, page links."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import URL

from api.admin.listing import (
    MAX_OFFSET_ROWS,
    Cursor,
    EstimatedCount,
    StridePagination,
    key_text,
    key_value,
    listing_fingerprint,
    timeout_message,
)


class Colour(enum.Enum):
    red = "red"


@pytest.mark.parametrize(
    "value",
    [
        42,
        -1.25,
        Decimal("10.000000000000000001"),
        "player-1",
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        datetime(2026, 12, 6, 10, 30, 1, 123456, tzinfo=UTC),
        date(2026, 12, 6),
        True,
        False,
        Colour.red,
    ],
)
def test_sort_key_values_survive_the_cursor(value: object) -> None:
    assert key_value(type(value), key_text(value)) == value


@pytest.mark.parametrize(("python_type", "raw"), [(int, "x"), (bool, "yes"), (uuid.UUID, "1")])
def test_wrong_key_values_are_refused(python_type: type, raw: str) -> None:
    with pytest.raises(ValueError):
        key_value(python_type, raw)


@given(st.lists(st.text(), max_size=4), st.text())
def test_cursors_round_trip(values: list[str], query: str) -> None:
    cursor = Cursor(tuple(values), query)
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize("raw", ["", "%%%", "bm90IGpzb24", "WzFd", "W1sxXSwgIngiXQ"])
def test_anything_else_is_not_a_cursor(raw: str) -> None:
    with pytest.raises(ValueError):
        Cursor.decode(raw)


def test_the_fingerprint_ignores_paging_only() -> None:
    base = [("search", "x"), ("sortBy", "score")]
    paged = [*base, ("page", "3"), ("pageSize", "50"), ("after", "abc")]
    assert listing_fingerprint(base) == listing_fingerprint(paged)
    assert listing_fingerprint(base) != listing_fingerprint([*base, ("sort", "desc")])


def test_an_estimate_says_so() -> None:
    assert str(EstimatedCount(10_000_000)) == "about 10,000,000"
    assert EstimatedCount(7) == 7
    assert "took longer than 0.2 s" in timeout_message(200)


def _controls(pagination: StridePagination) -> dict[int, str]:
    pagination.add_pagination_urls(URL("http://t/admin/x/list?search=a&after=old"))
    return {c.number: c.url for c in pagination.page_controls}


def test_next_and_prev_go_by_cursor_numbers_by_page() -> None:
    page = StridePagination(
        rows=[1], page=3, page_size=25, count=1000, has_more=True, before_first="B", after_last="A"
    )
    controls = _controls(page)
    assert controls[2].endswith("page=2&before=B")
    assert controls[4].endswith("page=4&after=A")
    assert controls[1] == "http://t/admin/x/list?search=a&page=1"
    assert "after=old" not in controls[3]
    assert page.has_previous and page.has_next


def test_deep_pages_get_no_numbered_links() -> None:
    deep = MAX_OFFSET_ROWS // 25 + 100
    page = StridePagination(
        rows=[1],
        page=deep,
        page_size=25,
        count=EstimatedCount(10_000_000),
        has_more=True,
        before_first="B",
        after_last="A",
    )
    assert sorted(_controls(page)) == [deep - 1, deep, deep + 1]


def test_the_last_page_has_no_next() -> None:
    page = StridePagination(rows=[1], page=2, page_size=25, count=26, has_more=False)
    controls = _controls(page)
    assert sorted(controls) == [1, 2]
    assert not page.has_next
