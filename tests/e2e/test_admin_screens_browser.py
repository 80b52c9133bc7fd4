"""The admin panel's own screens in a real browser (Debian chromium driven by Playwright)
against the API that `stride up` runs: the home page, a leaderboard's standings (ranks as
the public API gives them), a player search, and a player's link to their rows.

Screenshots land in ``test-output/screenshots/`` at the repository root (git-ignored).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.identity.admin_users import create_admin_user
from core.identity.models import AdminRole
from core.platform.db import session_scope
from tests.admin_screens import new_board, new_game, now, submit
from tests.e2e.conftest import SCREENSHOTS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

PASSWORD = "browser test password"


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def seed(db_engine: Engine) -> tuple[str, str]:
    """A game with a weekly board of 60 players (ties among them), today's events, totals
    and reward commands, as a morning of a real game would leave them."""
    game = new_game("Tri Arena")
    board = new_board(db_engine, game, reset_schedule="0 0 * * 1")
    start = now() - timedelta(minutes=30)
    players = [f"player-{i:04d}" for i in range(60)]
    submit(
        db_engine,
        game,
        [
            (p, 7_000 + (i * 37) % 1_000 // 50 * 5, start + timedelta(seconds=i % 4))
            for i, p in enumerate(players)
        ],
    )
    with db_engine.begin() as conn:
        for i, player in enumerate(players):
            conn.execute(
                text(
                    "INSERT INTO processed_events (game_id, event_id, player_id, type, payload,"
                    " occurred_at, client_occurred_at, received_at, source_partition,"
                    " source_offset) VALUES (:g, :e, :p, 'score', '{\"score\": 1}', :t, :t, :t,"
                    " 0, :o)"
                ),
                {"g": game, "e": uuid.uuid4(), "p": player, "t": start, "o": i},
            )
            conn.execute(
                text(
                    "INSERT INTO player_totals (game_id, player_id, events, total_score,"
                    " best_score, first_event_at, last_event_at)"
                    " VALUES (:g, :p, 1, 7000, 7000, :t, :t)"
                ),
                {"g": game, "p": player, "t": start},
            )
            conn.execute(
                text(
                    "INSERT INTO reward_commands (command_id, source_event_id, action, status,"
                    " game_id, player_id, token, amount, reason, issued_at)"
                    " VALUES (:c, :e, 'mint', :s, :g, :p, 'TRI', :a, 'score', :t)"
                ),
                {
                    "c": uuid.uuid4(),
                    "e": uuid.uuid4(),
                    "s": "failed" if i % 20 == 0 else "pending",
                    "g": game,
                    "p": player,
                    "a": Decimal("12.5"),
                    "t": start,
                },
            )
    return game, board


def test_operator_walks_home_standings_and_a_players_rows(
    browser: Browser, live_api: str, db_engine: Engine
) -> None:
    username = f"ops-{uuid.uuid4().hex[:6]}"
    with session_scope() as session:
        create_admin_user(session, username, PASSWORD, AdminRole.viewer)
    game, board = seed(db_engine)
    api = httpx.get(f"{live_api}/v1/leaderboards/{board}/records", params={"limit": 1000})
    assert api.status_code == 200, api.text
    expected = [[f"{r['rank']:,}", r["owner_id"], f"{r['score']:,}"] for r in api.json()["records"]]

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_api}/admin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_api}/admin/")

    # Home: today's events of the game, open rewards, the leaderboard's link.
    events = page.locator(f"#table-events tr[data-game='{game}'] td.events")
    assert events.inner_text() == "60"
    assert page.locator("#players-today").inner_text() != ""
    assert page.locator("#card-dead-letters").is_visible()
    shoot(page, "admin-home")

    page.click(f"#table-boards a.board-link:text-is('{board}')")
    page.wait_for_url(f"**/admin/standings?leaderboard_id={board}")
    page.locator("#standings-table").wait_for()

    def shown() -> list[list[str]]:
        rows = page.locator("#standings-table tbody tr")
        return [
            [rows.nth(i).locator("td").nth(c).inner_text() for c in range(3)]
            for i in range(rows.count())
        ]

    assert shown() == expected[:50]
    assert "Tri Arena" in page.locator("#standings-game").inner_text()
    assert "(current)" in page.locator("#period option:checked").inner_text()
    shoot(page, "admin-standings")

    page.click("#standings-next")
    page.wait_for_url("**cursor=**")
    assert shown() == expected[50:]

    # The player search jumps to the player's rank.
    wanted = expected[41]
    page.fill("#player", wanted[1])
    page.click("#standings-go")
    page.locator("#standings-found").wait_for()
    assert page.locator("#standings-found td").nth(0).inner_text() == wanted[0]
    shoot(page, "admin-standings-player")

    # The player's link opens their rows of player_totals.
    page.click(f"#standings-found a:text-is('{wanted[1]}')")
    page.wait_for_url(f"**/admin/player-totals/list?search={wanted[1]}")
    page.get_by_role("cell", name=wanted[1], exact=True).first.wait_for()
    shoot(page, "admin-player-totals")
    context.close()
