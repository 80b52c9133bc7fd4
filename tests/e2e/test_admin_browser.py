"""The admin panel in a real browser (Debian chromium driven by Playwright) against the API
that `stride up` runs: log in, search score_log, edit a row as an editor, run a query."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.identity.admin_users import create_admin_user
from core.identity.models import AdminRole
from core.platform.db import session_scope

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser test password"
SCREENSHOTS = Path("/tmp")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian chromium is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_editor_logs_in_searches_edits_and_queries(
    browser: Browser, live_api: str, db_engine: Engine
) -> None:
    username = f"ops-{uuid.uuid4().hex[:6]}"
    with session_scope() as session:
        create_admin_user(session, username, PASSWORD, AdminRole.editor)
    player = f"browser-player-{uuid.uuid4().hex[:8]}"
    with db_engine.begin() as conn:
        row_id = conn.execute(
            text(
                "INSERT INTO score_log (request_id, user_id, input_value, score)"
                " VALUES (:r, :u, 2.0, 20.0) RETURNING id"
            ),
            {"r": uuid.uuid4(), "u": player},
        ).scalar_one()

    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)

    # Log in: unauthenticated pages send the browser to the login form.
    page.goto(f"{live_api}/admin/score-log/list")
    assert page.url.endswith("/admin/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_api}/admin/")
    assert "You are an editor" in page.locator("#role-summary").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "stride-admin-index.png"), full_page=True)

    # Search score_log for the player.
    page.goto(f"{live_api}/admin/score-log/list")
    page.fill("#search-input", player)
    page.click("#search-button")
    page.wait_for_url(f"**search={player}**")
    page.get_by_role("cell", name=player, exact=True).wait_for()
    assert page.locator("tbody tr").count() == 1
    page.screenshot(path=str(SCREENSHOTS / "stride-admin-list.png"), full_page=True)

    # Edit the row as an editor; the change and its audit row land together.
    page.goto(f"{live_api}/admin/score-log/edit/{row_id}")
    page.fill("#score", "123.25")
    page.click("input[type=submit][value=Save]")
    page.wait_for_url(f"{live_api}/admin/score-log/list**")
    with db_engine.connect() as conn:
        score = conn.execute(
            text("SELECT score FROM score_log WHERE id = :id"), {"id": row_id}
        ).scalar_one()
        audit = conn.execute(
            text(
                "SELECT admin_username, action, before, after FROM admin_audit_log"
                " WHERE table_name = 'score_log' AND row_pk = :pk"
            ),
            {"pk": str(row_id)},
        ).one()
    assert score == 123.25
    assert audit.admin_username == username
    assert audit.action == "edit"
    assert (audit.before["score"], audit.after["score"]) == (20.0, 123.25)

    # Run a query on the read-only SQL page and read the result table.
    page.click("text=SQL query (read-only)")
    page.wait_for_url(f"{live_api}/admin/query")
    page.fill("#sql", f"SELECT user_id, score FROM score_log WHERE user_id = '{player}'")
    page.click("#run-query")
    result = page.locator("#query-result")
    result.wait_for()
    assert result.locator("thead th").all_inner_texts() == ["user_id", "score"]
    assert result.locator("tbody td").all_inner_texts() == [player, "123.25"]
    page.click("#schema-list summary")
    page.screenshot(path=str(SCREENSHOTS / "stride-admin-query.png"), full_page=True)

    # The same query as a CSV download.
    with page.expect_download() as download_info:
        page.click("#download-csv")
    csv_text = Path(download_info.value.path()).read_text()
    assert csv_text.splitlines() == ["user_id,score", f"{player},123.25"]

    # A write is refused with a message a non-engineer understands (Ctrl+Enter runs it).
    page.fill("#sql", "DELETE FROM score_log")
    page.press("#sql", "Control+Enter")
    page.locator("#query-error").wait_for()
    assert "This page is read-only" in page.locator("#query-error").inner_text()
    context.close()
