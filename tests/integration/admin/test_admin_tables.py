"""Every table view reads like a product (issue #12, admin items 2-5): a human title and a
description, URLs from table names, links between related rows with names beside ids,
amounts with their token, JSON as JSON, audit rows as a field diff, leaderboard internals
hidden, invalid filter values refused, empty states, a message after a save, a wrong
password said once, error pages inside the layout with a way back."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.admin.views import ADMIN_TABLES
from core.identity.models import AdminRole
from tests.admin_helpers import PASSWORD, new_admin


@dataclass(frozen=True)
class Seeded:
    game: str
    game_name: str
    player: str
    event_id: uuid.UUID
    command_id: uuid.UUID
    zero_command_id: uuid.UUID
    board: str


@pytest.fixture
def seeded(db_engine: Engine) -> Seeded:
    """A game with one event of one player, the reward command it earned (10 STRIDE), one
    of 0 STRIDE, and an all-time leaderboard with the player's record and submission."""
    tag = uuid.uuid4().hex[:8]
    rows = Seeded(
        game=f"g-{tag}",
        game_name=f"Tables test game {tag}",
        player=f"player-{tag}",
        event_id=uuid.uuid4(),
        command_id=uuid.uuid4(),
        zero_command_id=uuid.uuid4(),
        board=f"b-{tag}",
    )
    now = datetime.now(UTC)
    params = {
        "g": rows.game,
        "n": rows.game_name,
        "p": rows.player,
        "e": rows.event_id,
        "b": rows.board,
        "now": now,
        "h": uuid.uuid4().hex,
    }
    with db_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO games (game_id, name, api_key_hash, api_key_prefix)"
                " VALUES (:g, :n, :h, 'sk_test')"
            ),
            params,
        )
        conn.execute(
            text(
                "INSERT INTO processed_events (game_id, event_id, player_id, type, payload,"
                " occurred_at, client_occurred_at, received_at, source_partition, source_offset)"
                " VALUES (:g, :e, :p, 'match_end',"
                ' \'{"result": "win", "level": null}\', :now, :now, :now, 0, 1)'
            ),
            params,
        )
        conn.execute(
            text("INSERT INTO player_totals (game_id, player_id, wins) VALUES (:g, :p, 1)"),
            params,
        )
        for command, amount in ((rows.command_id, "10"), (rows.zero_command_id, "0")):
            conn.execute(
                text(
                    "INSERT INTO reward_commands (command_id, source_event_id, action, game_id,"
                    " player_id, token, amount, reason, issued_at)"
                    " VALUES (:c, :e, 'mint', :g, :p, 'STRIDE', :a, 'win', :now)"
                ),
                params | {"c": command, "a": amount},
            )
        conn.execute(
            text(
                "INSERT INTO leaderboards (id, game_id, sort_order, operator, period_start)"
                " VALUES (:b, :g, 'desc', 'best', '1970-01-01T00:00:00Z')"
            ),
            params,
        )
        conn.execute(
            text(
                "INSERT INTO leaderboard_records (leaderboard_id, period_start, owner_id, score,"
                " sort_key, num_score, reached_at)"
                " VALUES (:b, '1970-01-01T00:00:00Z', :p, 7955, -7955, 1, :now)"
            ),
            params,
        )
        conn.execute(
            text(
                "INSERT INTO leaderboard_rank_blocks (leaderboard_id, period_start,"
                " lower_sort_key, lower_reached_at, lower_owner_id, size)"
                " VALUES (:b, '1970-01-01T00:00:00Z', -9223372036854775808, :now, '', 1)"
            ),
            params,
        )
    return rows


def _hrefs(page_html: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"#][^"]*)"', page_html)]


def visible(page_html: str) -> str:
    """The text a reader sees: tags and attributes (URLs, tooltips) left out, unescaped."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page_html))


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


# ---- item 5: titles, descriptions, URLs ---------------------------------------------------


def test_every_table_has_a_title_a_description_and_a_url_from_its_name(
    owner: TestClient,
) -> None:
    for table in ADMIN_TABLES:
        assert table.title and table.description, table.table_name
        identity = table.table_name.replace("_", "-")
        page = owner.get(f"/admin/{identity}/list")
        assert page.status_code == 200, identity
        assert table.title in visible(page.text), identity
        assert table.description in visible(page.text), identity
    # the scheme other pages link to
    for path in (
        "/admin/reward-commands/list",
        "/admin/score-log/list",
        "/admin/processed-events/list",
        "/admin/player-totals/list",
    ):
        assert owner.get(path).status_code == 200, path
    assert owner.get("/admin/reward-command-row/list").status_code == 404


def test_the_actions_button_shows_only_where_there_is_an_action(
    editor: TestClient, score_row: dict
) -> None:
    read_only = editor.get("/admin/processed-events/list")
    assert "dropdownMenuButton" not in read_only.text
    assert "select-all" not in read_only.text
    deletable = editor.get("/admin/score-log/list", params={"search": score_row["user_id"]})
    assert "Delete selected rows" in deletable.text
    assert " disabled " not in deletable.text.split("dropdownMenuButton")[0][-300:]


def test_an_empty_list_says_so_and_a_search_that_found_nothing_offers_a_way_out(
    viewer: TestClient,
) -> None:
    nothing = viewer.get("/admin/score-log/list", params={"search": f"nobody-{uuid.uuid4()}"})
    assert nothing.status_code == 200
    assert "Showing 1 to 0" not in nothing.text
    assert "Nothing matched" in nothing.text
    assert "the search “nobody-" in nothing.text
    [clear] = re.findall(r'href="([^"]*)"[^>]*id="clear-filters"', nothing.text)
    assert clear.endswith("/admin/score-log/list")
    filtered = viewer.get(
        "/admin/score-log/list",
        params={"score": "-1e300", "score_op": "less_than", "search": uuid.uuid4().hex},
    )
    assert "Score less than “-1e300”" in filtered.text


def test_a_save_is_confirmed_on_the_page_the_editor_lands_on(
    editor: TestClient, score_row: dict
) -> None:
    form = editor.get(f"/admin/score-log/edit/{score_row['id']}")
    assert f"Edit score log entry {score_row['id']}" in form.text
    assert score_row["user_id"] in form.text.split('id="edit-title"')[1].split("</h3>")[0]
    saved = editor.post(
        f"/admin/score-log/edit/{score_row['id']}",
        data={
            "user_id": score_row["user_id"],
            "input_value": "4.0",
            "score": "41.5",
            "formula_version": "1",
            "save": "Save",
        },
    )
    assert saved.status_code == 200
    assert saved.url.path == "/admin/score-log/list"
    assert f"Saved score log entry {score_row['id']}." in saved.text
    assert "Saved score log entry" not in editor.get("/admin/score-log/list").text  # said once


def test_a_wrong_password_is_said_once(app: FastAPI) -> None:
    username = new_admin(AdminRole.viewer)
    with TestClient(app, client=(f"2001:db8::{uuid.uuid4().hex[:4]}", 50000)) as client:
        refused = client.post(
            "/admin/login", data={"username": username, "password": PASSWORD + "x"}
        )
    assert refused.status_code == 400
    assert refused.text.count("Invalid credentials.") == 1


def test_a_refused_page_is_inside_the_layout_with_a_way_back(
    viewer: TestClient, score_row: dict
) -> None:
    refused = viewer.get(f"/admin/score-log/edit/{score_row['id']}")
    assert refused.status_code == 403
    assert "Not allowed" in refused.text
    assert "Your role (viewer) does not allow this page" in refused.text
    assert 'id="navbar-menu"' in refused.text  # the panel's menu is still there
    paths = [_path(h) for h in _hrefs(refused.text)]
    assert "/admin/score-log/list" in paths and "/admin/" in paths
    missing = viewer.get("/admin/score-log/details/999999999999")
    assert missing.status_code == 404
    assert "Not found" in missing.text and 'id="error-home"' in missing.text
    assert 'id="navbar-menu"' in missing.text


# ---- item 2: links between rows, names beside ids -----------------------------------------


def test_a_reward_command_links_its_game_player_and_source_event(
    viewer: TestClient, seeded: Seeded
) -> None:
    for page in (
        viewer.get("/admin/reward-commands/list", params={"search": str(seeded.command_id)}),
        viewer.get(f"/admin/reward-commands/details/{seeded.command_id}"),
    ):
        assert page.status_code == 200
        paths = [_path(h) for h in _hrefs(page.text)]
        assert f"/admin/games/details/{seeded.game}" in paths
        assert f"/admin/player-totals/details/{seeded.game};{seeded.player}" in paths
        assert f"/admin/processed-events/details/{seeded.game};{seeded.event_id}" in paths
        assert seeded.game_name in page.text  # the game's name beside its id
    event = viewer.get(f"/admin/processed-events/details/{seeded.game};{seeded.event_id}")
    assert event.status_code == 200 and str(seeded.event_id) in event.text
    totals = viewer.get(f"/admin/player-totals/details/{seeded.game};{seeded.player}")
    assert totals.status_code == 200 and seeded.player in totals.text


def test_a_game_links_its_players_events_reward_commands_and_leaderboards(
    viewer: TestClient, seeded: Seeded
) -> None:
    page = viewer.get(f"/admin/games/details/{seeded.game}")
    links = {_path(h) for h in _hrefs(page.text)}
    filter_of = f"game_id={seeded.game}&game_id_op=equals"
    for identity in ("player-totals", "processed-events", "reward-commands", "leaderboards"):
        assert f"/admin/{identity}/list?{filter_of}" in links, identity
    commands = viewer.get(f"/admin/reward-commands/list?{filter_of}")
    found = {str(seeded.command_id), str(seeded.zero_command_id)}
    assert found <= set(re.findall(r"[0-9a-f-]{36}", commands.text))
    players = viewer.get(f"/admin/player-totals/list?{filter_of}")
    assert players.text.count(f"/admin/player-totals/details/{seeded.game};{seeded.player}") == 1


def test_a_leaderboard_links_its_records_and_standings(viewer: TestClient, seeded: Seeded) -> None:
    page = viewer.get(f"/admin/leaderboards/details/{seeded.board}")
    links = {_path(h) for h in _hrefs(page.text)}
    assert f"/admin/standings?leaderboard_id={seeded.board}" in links
    records_url = (
        f"/admin/leaderboard-records/list?leaderboard_id={seeded.board}&leaderboard_id_op=equals"
    )
    assert records_url in links
    records = viewer.get(records_url)
    record_links = {_path(h) for h in _hrefs(records.text)}
    assert f"/admin/leaderboards/details/{seeded.board}" in record_links
    assert (
        f"/admin/player-totals/list?player_id={seeded.player}&player_id_op=equals" in record_links
    )


def test_an_audit_row_links_the_row_it_changed_and_shows_only_the_changed_fields(
    editor: TestClient, score_row: dict
) -> None:
    editor.post(
        f"/admin/score-log/edit/{score_row['id']}",
        data={
            "user_id": score_row["user_id"],
            "input_value": "4.0",
            "score": "123.25",
            "formula_version": "1",
            "save": "Save",
        },
    )
    trail = editor.get(
        "/admin/admin-audit-log/list",
        params={
            "table_name": "score_log",
            "table_name_op": "equals",
            "search": score_row["user_id"],
        },
    )
    assert f"/admin/score-log/details/{score_row['id']}" in {_path(h) for h in _hrefs(trail.text)}
    [diff] = re.findall(
        r'<div class="stride-diff" data-action="edit">(.*?)</div></div>', trail.text
    )
    assert "<strong>score</strong>: <code>40.0</code> → <code>123.25</code>" in diff
    assert "user_id" not in diff and "input_value" not in diff  # unchanged fields are left out
    [entry] = re.findall(r'href="([^"]*/admin-audit-log/details/\d+)"', trail.text)
    details = editor.get(html.unescape(entry))
    [table] = re.findall(r'<table class="table table-sm stride-diff.*?</table>', details.text, re.S)
    assert "<td>score</td><td><code>40.0</code></td><td><code>123.25</code></td>" in table
    assert "user_id" not in table


# ---- item 3: formats -----------------------------------------------------------------------


def test_amounts_read_with_their_token_and_exports_stay_plain(
    viewer: TestClient, seeded: Seeded
) -> None:
    params = {"game_id": seeded.game, "game_id_op": "equals", "sortBy": "amount", "sort": "asc"}
    page = viewer.get("/admin/reward-commands/list", params=params)
    assert "<td>10 STRIDE</td>" in page.text and "<td>0 STRIDE</td>" in page.text
    assert "10.000000000000000000" not in page.text and "0E-18" not in page.text
    rows = list(
        csv.DictReader(
            io.StringIO(viewer.get("/admin/reward-commands/export/csv", params=params).text)
        )
    )
    assert [(r["amount"], r["token"]) for r in rows] == [("0", "STRIDE"), ("10", "STRIDE")]
    exported = viewer.get("/admin/reward-commands/export/json", params=params).json()
    assert [r["amount"] for r in exported] == ["0", "10"]  # text: no digit of 18 is lost
    totals = viewer.get(f"/admin/player-totals/details/{seeded.game};{seeded.player}")
    assert "0 STRIDE" in totals.text


def test_json_reads_as_json_in_lists_and_details(viewer: TestClient, seeded: Seeded) -> None:
    listing = viewer.get(
        "/admin/processed-events/list", params={"game_id": seeded.game, "game_id_op": "equals"}
    )
    assert '{"level": null, "result": "win"}' in visible(listing.text)  # JSONB sorts keys
    assert "None}" not in visible(listing.text) and "'level'" not in visible(listing.text)
    details = viewer.get(f"/admin/processed-events/details/{seeded.game};{seeded.event_id}")
    [block] = re.findall(r'<pre class="stride-json-block">(.*?)</pre>', details.text, re.S)
    assert json.loads(html.unescape(block)) == {"result": "win", "level": None}
    exported = viewer.get(
        "/admin/processed-events/export/csv",
        params={"game_id": seeded.game, "game_id_op": "equals"},
    )
    [row] = csv.DictReader(io.StringIO(exported.text))
    assert json.loads(row["payload"]) == {"result": "win", "level": None}


def test_leaderboard_internals_stay_out_of_the_lists(viewer: TestClient, seeded: Seeded) -> None:
    board = {"leaderboard_id": seeded.board, "leaderboard_id_op": "equals"}
    records = visible(viewer.get("/admin/leaderboard-records/list", params=board).text)
    assert "All time" in records and "1970" not in records
    assert "Sort key" not in records and "-7955" not in records
    assert "7955" in records
    blocks = visible(viewer.get("/admin/leaderboard-rank-blocks/list", params=board).text)
    assert "-9223372036854775808" not in blocks and "All time" in blocks
    boards = visible(viewer.get(f"/admin/leaderboards/details/{seeded.board}").text)
    assert "All time" in boards and "1970" not in boards


# ---- item 4: invalid filter values ---------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"score": "abc", "score_op": "greater_than"}, "it expects a number"),
        ({"id": "1.5", "id_op": "equals"}, "it expects a whole number"),
        ({"id": "99999999999999999999", "id_op": "greater_than"}, "it expects a whole number"),
        ({"created_at": "yesterday", "created_at_op": "less_than"}, "it expects a date"),
        ({"request_id": "not-a-uuid", "request_id_op": "equals"}, "it expects a whole id"),
        ({"score": "5", "score_op": "sideways"}, "has no operation 'sideways'"),
    ],
)
def test_an_invalid_filter_value_is_refused_with_what_is_expected(
    viewer: TestClient, score_row: dict, params: dict[str, str], expected: str
) -> None:
    page = viewer.get("/admin/score-log/list", params=params | {"search": score_row["user_id"]})
    assert page.status_code == 400
    assert expected in visible(page.text)
    assert score_row["user_id"] not in page.text.split('id="error-message"')[0][-200:]
    [back] = re.findall(r'id="error-back" href="([^"]*)"', page.text)
    back = html.unescape(back)
    assert f"search={score_row['user_id']}" in back
    assert not set(params) & set(re.findall(r"[?&]([^=]+)=", back))  # without the bad filter
    export = viewer.get("/admin/score-log/export/csv", params=params)
    assert export.status_code == 400 and expected in visible(export.text)


def test_a_valid_date_filter_still_filters(viewer: TestClient, score_row: dict) -> None:
    page = viewer.get(
        "/admin/score-log/list",
        params={
            "created_at": "2000-01-01",
            "created_at_op": "greater_than",
            "search": score_row["user_id"],
        },
    )
    assert page.status_code == 200 and score_row["user_id"] in page.text


def test_a_delete_is_confirmed_on_the_list_it_returns_to(
    editor: TestClient, score_row: dict
) -> None:
    deleted = editor.delete(f"/admin/score-log/delete?pks={score_row['id']}")
    assert deleted.status_code == 200
    back = editor.get(_path(deleted.text))
    assert f"Deleted score log entry {score_row['id']}." in visible(back.text)


def test_an_unknown_page_is_a_page_of_the_panel(viewer: TestClient) -> None:
    page = viewer.get("/admin/no-such-table/list")
    assert page.status_code == 404
    assert "Not found" in visible(page.text) and 'id="error-home"' in page.text
