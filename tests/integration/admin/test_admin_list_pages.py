"""List pages stay fast on big tables: counts stop early and are estimated beyond a
threshold, pages after the first few are found by cursor (no OFFSET), and every statement of
the panel runs under a statement timeout whose expiry is explained."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine

from api.admin import mount_admin
from api.admin.views import StrideModelView
from core.platform.config import get_settings
from core.platform.db import session_scope
from core.scores.models import ScoreLog


@pytest.fixture
def players(db_engine: Engine) -> str:
    """Seven score_log rows whose user_id starts with a fresh prefix; scores 1..7."""
    prefix = f"list-{uuid.uuid4().hex[:8]}"
    with db_engine.begin() as conn:
        for score in (3, 1, 7, 5, 2, 6, 4):
            conn.execute(
                text(
                    "INSERT INTO score_log (request_id, user_id, input_value, score)"
                    " VALUES (:r, :u, 1.0, :s)"
                ),
                {"r": uuid.uuid4(), "u": f"{prefix}-{score}", "s": float(score)},
            )
    return prefix


@pytest.fixture
def statements(db_engine: Engine) -> Iterator[list[str]]:
    """The SQL the application engine runs meanwhile."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(db_engine, "before_cursor_execute", record)
    yield seen
    event.remove(db_engine, "before_cursor_execute", record)


def _users(page: str) -> list[str]:
    return re.findall(r"<td>(list-[0-9a-f]{8}-\d)</td>", page)


def _link(page: str, label: str) -> str | None:
    for href, text_ in re.findall(r'<a class="page-link" href="([^"#]+)">(.*?)</a>', page, re.S):
        if label in text_:
            return html.unescape(href)
    return None


def test_pages_follow_each_other_by_cursor(viewer: TestClient, players: str) -> None:
    url: str | None = f"/admin/score-log/list?search={players}&sortBy=score&sort=desc&pageSize=2"
    pages, links = [], []
    while url:
        page = viewer.get(url)
        assert page.status_code == 200, page.text[:300]
        pages.append(_users(page.text))
        links.append(url)
        url = _link(page.text, "next")
    assert pages == [[f"{players}-{s}" for s in chunk] for chunk in ([7, 6], [5, 4], [3, 2], [1])]
    assert all("after=" in link for link in links[1:])
    back = []
    url = _link(viewer.get(links[-1]).text, "prev")
    while url:
        page = viewer.get(url)
        back.append(_users(page.text))
        url = _link(page.text, "prev")
    assert back == pages[-2::-1]


def test_cursor_pages_use_no_offset(
    viewer: TestClient, players: str, statements: list[str]
) -> None:
    first = viewer.get(f"/admin/score-log/list?search={players}&pageSize=3")
    following = _link(first.text, "next")
    assert following and "after=" in following
    statements.clear()
    assert viewer.get(following).status_code == 200
    listing = [s for s in statements if "FROM score_log" in s and "count(" not in s]
    assert listing and all("OFFSET" not in s for s in listing)


def test_numbered_pages_keep_working(
    viewer: TestClient, players: str, statements: list[str]
) -> None:
    page = viewer.get(f"/admin/score-log/list?search={players}&sortBy=score&pageSize=2&page=3")
    assert page.status_code == 200
    assert _users(page.text) == [f"{players}-5", f"{players}-6"]
    # The offset is skipped on the sort key's columns alone, the rows read from there.
    [skip] = [s for s in statements if "OFFSET" in s]
    assert skip.startswith("SELECT score_log.score, score_log.id \nFROM score_log")
    [rows] = [s for s in statements if "score_log.user_id, score_log.input_value" in s]
    assert "OFFSET" not in rows and ">=" in rows


def test_a_cursor_of_another_sort_is_ignored(viewer: TestClient, players: str) -> None:
    first = viewer.get(f"/admin/score-log/list?search={players}&sortBy=score&pageSize=2")
    following = _link(first.text, "next")
    assert following
    resorted = following.replace("sortBy=score", "sortBy=user_id").replace("sort=asc", "")
    page = viewer.get(resorted)
    assert page.status_code == 200
    assert _users(page.text) == [f"{players}-3", f"{players}-4"]  # page 2 by number


def test_a_garbled_cursor_falls_back_to_the_page_number(viewer: TestClient, players: str) -> None:
    page = viewer.get(
        f"/admin/score-log/list?search={players}&sortBy=score&pageSize=2&page=2&after=%%%"
    )
    assert page.status_code == 200
    assert _users(page.text) == [f"{players}-3", f"{players}-4"]


def test_counts_are_exact_below_the_threshold_and_estimated_above(
    viewer: TestClient, players: str, monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    monkeypatch.setattr(StrideModelView, "exact_count_limit", 5)
    few = viewer.get(f"/admin/score-log/list?search={players}-1")
    assert "of 1 row" in few.text
    many = viewer.get(f"/admin/score-log/list?search={players}")
    assert re.search(r"of about [\d,]+ rows", many.text), many.text[-3000:]
    counts = [s for s in statements if "count(" in s.lower()]
    assert counts and all("LIMIT" in s and "ORDER BY" not in s for s in counts)
    assert any(s.startswith("EXPLAIN") for s in statements)


def test_every_panel_statement_has_a_timeout(db_engine: Engine) -> None:
    admin = mount_admin(FastAPI())
    with admin.session_maker() as session:
        timeout = session.execute(text("SHOW statement_timeout")).scalar_one()
    assert timeout == f"{get_settings().admin_statement_timeout_ms // 1000}s"
    with session_scope() as session:  # the API's own sessions are not limited by it
        assert session.execute(text("SHOW statement_timeout")).scalar_one() == "0"


def test_a_list_stopped_by_the_timeout_says_what_to_do(
    viewer: TestClient,
    players: str,
    monkeypatch: pytest.MonkeyPatch,
    query_settings: pytest.MonkeyPatch,
) -> None:
    query_settings.setenv("STRIDE_ADMIN_STATEMENT_TIMEOUT_MS", "200")
    get_settings.cache_clear()

    def slow(self: StrideModelView, request) -> object:
        return select(ScoreLog).where(text("(SELECT true FROM pg_sleep(1))"))

    monkeypatch.setattr(StrideModelView, "list_query", slow)
    page = viewer.get("/admin/score-log/list")
    assert page.status_code == 503
    assert "took longer than 0.2 s and was stopped" in page.text
    assert "filter" in page.text
