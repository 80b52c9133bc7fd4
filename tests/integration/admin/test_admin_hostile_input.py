"""The admin panel answers hostile URLs with a page, never a 500: a NUL in a search, an id
that is not a number, an id beyond a 64-bit integer."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


def test_a_nul_in_a_search_finds_nothing_instead_of_failing(editor: TestClient) -> None:
    page = editor.get("/admin/processed-events/list", params={"search": "a\x00b"})
    assert page.status_code == 200


@pytest.mark.parametrize("identifier", ["abc", "99999999999999999999999", "-99999999999999999999"])
def test_a_row_url_with_an_impossible_id_is_a_404(editor: TestClient, identifier: str) -> None:
    page = editor.get(f"/admin/score-log/details/{identifier}")
    assert page.status_code == 404
    edit = editor.get(f"/admin/score-log/edit/{identifier}")
    assert edit.status_code in (403, 404)  # score_log is read-only for editors, or no such row
