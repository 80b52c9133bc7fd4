"""The admin panel in a real browser (Debian chromium driven by Playwright) against the API
that `stride up` runs, as operations staff use it: sign in, search, edit a row and read the
confirmation and the audit diff, follow a reward command to its event, export a filtered
list, meet the empty state and the invalid-filter message, run a query and download it.

Screenshots of every screen land in ``test-output/screenshots/`` (git-ignored) to be looked at.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.identity.admin_users import create_admin_user
from core.identity.models import AdminRole
from core.platform.db import session_scope
from tests.e2e.conftest import SCREENSHOTS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

PASSWORD = "browser test password"


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"admin-{name}.png"), full_page=True)


def signed_in(browser: Browser, live_api: str, role: AdminRole) -> Page:
    """A browser page signed in as a fresh admin of ``role``."""
    username = f"ops-{uuid.uuid4().hex[:6]}"
    with session_scope() as session:
        create_admin_user(session, username, PASSWORD, role)
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_api}/admin/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_api}/admin/")
    return page


@dataclass(frozen=True)
class Game:
    game_id: str
    name: str
    player: str
    event_id: uuid.UUID
    commands: tuple[uuid.UUID, ...]


@pytest.fixture
def game(db_engine: Engine) -> Game:
    """A game with one event of one player and the two reward commands it earned, next to
    another game's command (which a filter on this game must leave out)."""
    tag = uuid.uuid4().hex[:6]
    seeded = Game(
        game_id=f"tri-{tag}",
        name=f"Triathlon {tag}",
        player=f"player-{tag}",
        event_id=uuid.uuid4(),
        commands=(uuid.uuid4(), uuid.uuid4()),
    )
    now = datetime.now(UTC)
    with db_engine.begin() as conn:
        for game_id, name in ((seeded.game_id, seeded.name), (f"other-{tag}", "Other game")):
            conn.execute(
                text(
                    "INSERT INTO games (game_id, name, api_key_hash, api_key_prefix)"
                    " VALUES (:g, :n, :h, 'sk_test')"
                ),
                {"g": game_id, "n": name, "h": uuid.uuid4().hex},
            )
        conn.execute(
            text(
                "INSERT INTO processed_events (game_id, event_id, player_id, type, payload,"
                " occurred_at, client_occurred_at, received_at, source_partition, source_offset)"
                " VALUES (:g, :e, :p, 'match_end', :payload, :now, :now, :now, 0, 7)"
            ),
            {
                "g": seeded.game_id,
                "e": seeded.event_id,
                "p": seeded.player,
                "now": now,
                "payload": '{"result": "win", "score": 7955, "level": null}',
            },
        )
        conn.execute(
            text("INSERT INTO player_totals (game_id, player_id, wins) VALUES (:g, :p, 1)"),
            {"g": seeded.game_id, "p": seeded.player},
        )
        conn.execute(
            text(
                "INSERT INTO leaderboards (id, game_id, sort_order, operator, period_start)"
                " VALUES (:b, :g, 'desc', 'best', '1970-01-01T00:00:00Z')"
            ),
            {"b": f"{seeded.game_id}-best", "g": seeded.game_id},
        )
        conn.execute(
            text(
                "INSERT INTO leaderboard_records (leaderboard_id, period_start, owner_id, score,"
                " sort_key, num_score, reached_at)"
                " VALUES (:b, '1970-01-01T00:00:00Z', :p, 7955, -7955, 1, :now)"
            ),
            {"b": f"{seeded.game_id}-best", "p": seeded.player, "now": now},
        )
        rows = [(seeded.game_id, c, a) for c, a in zip(seeded.commands, ("10", "2.5"), strict=True)]
        rows.append((f"other-{tag}", uuid.uuid4(), "1"))
        for game_id, command, amount in rows:
            conn.execute(
                text(
                    "INSERT INTO reward_commands (command_id, source_event_id, action, game_id,"
                    " player_id, token, amount, reason, issued_at)"
                    " VALUES (:c, :e, 'mint', :g, :p, 'STRIDE', :a, 'win', :now)"
                ),
                {
                    "c": command,
                    "e": seeded.event_id,
                    "g": game_id,
                    "p": seeded.player,
                    "a": amount,
                    "now": now,
                },
            )
    return seeded


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
    shot(page, "index")

    # Search score_log for the player.
    page.goto(f"{live_api}/admin/score-log/list")
    page.fill("#search-input", player)
    page.click("#search-button")
    page.wait_for_url(f"**search={player}**")
    page.get_by_role("cell", name=player, exact=True).wait_for()
    assert page.locator("tbody tr").count() == 1
    shot(page, "score-log-search")

    # Edit the row as an editor; the change and its audit row land together.
    page.goto(f"{live_api}/admin/score-log/edit/{row_id}")
    assert f"Edit score log entry {row_id}" in page.locator("#edit-title").inner_text()
    shot(page, "edit-form")
    page.fill("#score", "123.25")
    page.click("input[type=submit][value=Save]")
    page.wait_for_url(f"{live_api}/admin/score-log/list**")
    assert page.locator("#flash-message").inner_text().strip() == (
        f"Saved score log entry {row_id}."
    )
    shot(page, "saved")
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

    # The audit log shows the change as the one field it changed, and links the row.
    page.goto(f"{live_api}/admin/admin-audit-log/list?search={player}")
    diff = page.locator(".stride-diff").first
    assert diff.inner_text().strip() == "score: 20.0 → 123.25"
    shot(page, "audit-list")
    page.click(".stride-open")
    page.locator("table.stride-diff").wait_for()
    assert page.locator("table.stride-diff tbody tr").all_inner_texts() == ["score\t20.0\t123.25"]
    shot(page, "audit-details")
    page.get_by_role("link", name=str(row_id), exact=True).click()
    page.wait_for_url(f"{live_api}/admin/score-log/details/{row_id}")

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
    shot(page, "query")

    # The same query as a CSV download: the rows shown, and the full result.
    with page.expect_download() as download_info:
        page.click("#download-csv")
    csv_text = Path(download_info.value.path()).read_text()
    assert csv_text.splitlines() == ["user_id,score", f"{player},123.25"]
    with page.expect_download() as download_info:
        page.click("#download-full-csv")
    assert Path(download_info.value.path()).read_text().splitlines() == csv_text.splitlines()

    # A write is refused with a message a non-engineer understands (Ctrl+Enter runs it).
    page.fill("#sql", "DELETE FROM score_log")
    page.press("#sql", "Control+Enter")
    page.locator("#query-error").wait_for()
    assert "This page is read-only" in page.locator("#query-error").inner_text()
    context.close()


def test_operations_follow_links_export_a_filter_and_read_the_empty_and_invalid_states(
    browser: Browser, live_api: str, game: Game
) -> None:
    page = signed_in(browser, live_api, AdminRole.viewer)

    # The reward commands of one game: amounts with their token, the game's name beside it.
    page.goto(f"{live_api}/admin/reward-commands/list")
    form = page.locator("details.stride-filter", has=page.locator("select[name=game_id_op]"))
    form.locator("summary").click()  # filters are folded to their titles until opened
    form.locator("select").select_option("equals")
    form.locator("input[name=game_id]").fill(game.game_id)
    form.get_by_role("button", name="Apply filter").click()
    page.wait_for_url("**game_id_op=equals**")
    assert page.locator("#list-table tbody tr").count() == 2
    assert "10 STRIDE" in page.locator("#list-table").inner_text()
    assert page.get_by_role("link", name=game.name).count() == 2
    shot(page, "reward-commands-filtered")

    # A filtered export holds exactly the filtered rows.
    page.click("#export-menu")
    with page.expect_download() as download_info:
        page.click("#export-csv")
    exported = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert {r["command_id"] for r in exported} == {str(c) for c in game.commands}
    assert {r["game_id"] for r in exported} == {game.game_id}
    assert sorted(r["amount"] for r in exported) == ["10", "2.5"]

    # From a reward command to its source event, by links.
    page.locator("#list-table tbody tr").first.locator(".stride-open").click()
    page.wait_for_url("**/admin/reward-commands/details/**")
    shot(page, "reward-command")
    page.get_by_role("link", name=str(game.event_id), exact=True).click()
    page.wait_for_url(f"{live_api}/admin/processed-events/details/{game.game_id};{game.event_id}")
    details = page.locator("#details-table").inner_text()
    assert str(game.event_id) in details and "match_end" in details
    assert '"level": null' in page.locator("pre.stride-json-block").inner_text()
    shot(page, "processed-event")
    page.get_by_role("link", name="Reward commands of this event").click()
    page.wait_for_url("**/admin/reward-commands/list?**")
    assert page.locator("#list-table tbody tr").count() == 2

    # A game links its players, events, reward commands and leaderboards; a leaderboard its
    # records (all time, no internals) and its standings.
    page.goto(f"{live_api}/admin/games/details/{game.game_id}")
    shot(page, "game")
    page.locator("#related-links").get_by_role("link", name="Leaderboards").click()
    page.wait_for_url("**/admin/leaderboards/list?**")
    page.locator(".stride-open").first.click()
    page.wait_for_url(f"{live_api}/admin/leaderboards/details/{game.game_id}-best")
    assert (
        page.locator("#related-links")
        .get_by_role("link", name="Standings")
        .get_attribute("href")
        .endswith(f"/admin/standings?leaderboard_id={game.game_id}-best")
    )
    shot(page, "leaderboard")
    page.locator("#related-links").get_by_role("link", name="Records").click()
    page.wait_for_url("**/admin/leaderboard-records/list?**")
    records = page.locator("#list-table").inner_text()
    assert "All time" in records and "1970" not in records and "-7955" not in records
    shot(page, "leaderboard-records")

    # A search that finds nothing says so and offers the way back.
    page.goto(f"{live_api}/admin/reward-commands/list?search=nobody-{uuid.uuid4().hex}")
    assert page.locator("#empty-state .empty-title").inner_text() == "Nothing matched"
    shot(page, "empty-state")
    page.click("#clear-filters")
    page.wait_for_url(f"{live_api}/admin/reward-commands/list")
    assert page.locator("#list-table tbody tr").count() > 0

    # An invalid filter value is refused, saying what is expected, with a way out.
    page.goto(f"{live_api}/admin/score-log/list")
    form = page.locator("details.stride-filter", has=page.locator("select[name=score_op]"))
    form.locator("summary").click()
    form.locator("select").select_option("greater_than")
    form.locator("input[name=score]").fill("abc")
    form.get_by_role("button", name="Apply filter").click()
    page.locator("#error-message").wait_for()
    message = page.locator("#error-message").inner_text()
    assert "“abc” is not a valid value for the filter “Score greater than”" in message
    assert "it expects a number" in message
    shot(page, "invalid-filter")
    page.click("#error-back")
    page.wait_for_url(f"{live_api}/admin/score-log/list")

    # A page the role may not open is a page of the panel with a way back.
    page.goto(f"{live_api}/admin/admin-users/list")
    assert page.locator("#error-title").inner_text() == "Not allowed"
    shot(page, "forbidden")
    page.context.close()


def test_a_wrong_password_is_said_once(browser: Browser, live_api: str) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{live_api}/admin/login")
    page.fill("input[name=username]", f"nobody-{uuid.uuid4().hex[:6]}")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    page.locator("#login-error").wait_for()
    assert page.get_by_text("Invalid credentials.").count() == 1
    shot(page, "login-refused")
    context.close()
