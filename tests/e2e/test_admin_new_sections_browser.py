"""The admin panel's newer sections in a real browser, as a viewer from operations meets
them: every list of the content, economy, battles and chain (read side, writer, app actions)
tables opens from the menu's URL scheme with its title and description, and the audit log
keeps admin tables out of a viewer's sight. Screenshots land in ``test-output/screenshots/``."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from api.admin.views import ADMIN_TABLES
from core.identity.models import AdminRole
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.test_admin_browser import signed_in

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SECTIONS = ("Content", "Economy", "Battles", "Chain")


def test_a_viewer_opens_every_list_of_the_newer_sections(browser: Browser, live_api: str) -> None:
    page = signed_in(browser, live_api, AdminRole.viewer)
    tables = [t for t in ADMIN_TABLES if t.category in SECTIONS]
    assert len(tables) >= 30  # content 5, economy 12, battles 4, chain 15
    for table in tables:
        response = page.goto(f"{live_api}/admin/{table.identity}/list")
        assert response is not None and response.status == 200, table.identity
        heading = page.locator("h3.card-title").first
        assert heading.inner_text().strip() == table.plural, table.identity
        assert "Internal Server Error" not in page.content()
        page.screenshot(path=str(SCREENSHOTS / f"admin-list-{table.identity}.png"), full_page=True)
    # The menu offers the sections by name.
    page.goto(f"{live_api}/admin/")
    menu = page.content()
    for section in SECTIONS:
        assert section in menu, section
