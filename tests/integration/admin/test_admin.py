"""The admin panel against the real PostgreSQL: login, roles, audited edits, the SQL page."""

from __future__ import annotations

import csv
import html
import io
import re
import tracemalloc
import uuid
from datetime import timedelta

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError

from api.admin import mount_admin
from api.admin.audit import UnauditedWriteError, acting_admin
from api.admin.query import READ_ONLY_MESSAGE, run_read_only_query
from api.admin.views import ADMIN_TABLES, build_view
from core.identity.models import AdminRole
from core.platform.config import get_settings
from core.platform.db import session_scope
from core.platform.migrate import READONLY_HIDDEN_TABLES
from core.scores.models import ScoreLog
from tests.admin_helpers import (
    PASSWORD,
    Clock,
    fail_sign_ins,
    login_client,
    new_address,
    new_admin,
    sign_in,
)


def _audit_rows(db_engine: Engine, row_pk: int) -> list:
    with db_engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT admin_username, action, before, after, xmin::text AS tx"
                " FROM admin_audit_log WHERE table_name = 'score_log' AND row_pk = :pk"
                " ORDER BY id"
            ),
            {"pk": str(row_pk)},
        ).all()


# ---- login -------------------------------------------------------------------------------


def test_every_admin_page_requires_login(app: FastAPI) -> None:
    with TestClient(app) as client:
        for path in ("/admin/", "/admin/score-log/list", "/admin/query"):
            response = client.get(path, follow_redirects=False)
            assert response.status_code == 302, path
            assert response.headers["location"].endswith("/admin/login")


def test_wrong_password_is_rejected(app: FastAPI) -> None:
    username = new_admin(AdminRole.editor)
    with TestClient(app) as client:
        response = client.post(
            "/admin/login", data={"username": username, "password": PASSWORD + "x"}
        )
        assert response.status_code == 400
        assert "Invalid credentials" in response.text
        assert client.get("/admin/score-log/list", follow_redirects=False).status_code == 302


def test_session_cookie_is_strict_and_http_only(app: FastAPI) -> None:
    username = new_admin(AdminRole.viewer)
    with TestClient(app) as client:
        response = client.post(
            "/admin/login",
            data={"username": username, "password": PASSWORD},
            follow_redirects=False,
        )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/admin" in cookie


def test_deactivated_admin_is_signed_out(app: FastAPI, db_engine: Engine) -> None:
    username = new_admin(AdminRole.editor)
    with TestClient(app) as client:
        client.post("/admin/login", data={"username": username, "password": PASSWORD})
        assert client.get("/admin/score-log/list", follow_redirects=False).status_code == 200
        with db_engine.begin() as conn:
            conn.execute(
                text("UPDATE admin_users SET is_active = false WHERE username = :u"),
                {"u": username},
            )
        assert client.get("/admin/score-log/list", follow_redirects=False).status_code == 302


def test_cross_origin_post_is_refused(editor: TestClient, score_row: dict) -> None:
    response = editor.post(
        f"/admin/score-log/edit/{score_row['id']}",
        data={"user_id": "forged", "input_value": "1", "score": "1", "formula_version": "1"},
        headers={"origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert "Cross-site request refused" in response.text


# ---- sign-in throttling ------------------------------------------------------------------


def _lockouts(db_engine: Engine, username: str) -> list:
    with db_engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT action, after FROM admin_audit_log"
                " WHERE table_name = 'admin_login_attempts' AND admin_username = :u ORDER BY id"
            ),
            {"u": username},
        ).all()


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(
    throttled: tuple[FastAPI, Clock], db_engine: Engine
) -> None:
    app, _clock = throttled
    username = new_admin(AdminRole.viewer)
    with login_client(app) as client:
        fail_sign_ins(client, username, 5)
        refused = sign_in(client, username, PASSWORD)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) == 15 * 60
        assert (
            "Too many failed sign-in attempts for this account; try again in 15 minutes"
            in refused.text
        )
        assert 'name="password"' in refused.text  # the login page itself, with the reason
        assert client.get("/admin/", follow_redirects=False).status_code == 302
    [(action, after)] = _lockouts(db_engine, username)
    assert action == "lockout"
    assert (after["locked"], after["failures"]) == ("username", 5)


def test_refused_attempts_are_not_checked_nor_recorded(
    throttled: tuple[FastAPI, Clock], db_engine: Engine
) -> None:
    app, _clock = throttled
    username = new_admin(AdminRole.viewer)
    with login_client(app) as client:
        fail_sign_ins(client, username, 5)
        for _ in range(3):
            assert sign_in(client, username, PASSWORD).status_code == 429
    with db_engine.connect() as conn:
        recorded = conn.execute(
            text("SELECT count(*) FROM admin_login_attempts WHERE username = :u"),
            {"u": username},
        ).scalar_one()
    assert recorded == 5
    assert len(_lockouts(db_engine, username)) == 1


def test_a_success_resets_the_count(throttled: tuple[FastAPI, Clock]) -> None:
    app, _clock = throttled
    username = new_admin(AdminRole.viewer)
    with login_client(app) as client:
        fail_sign_ins(client, username, 4)
        assert sign_in(client, username, PASSWORD).status_code == 302
        fail_sign_ins(client, username, 4)
        assert sign_in(client, username, PASSWORD).status_code == 302


def test_another_username_is_unaffected(throttled: tuple[FastAPI, Clock]) -> None:
    app, _clock = throttled
    locked, other = new_admin(AdminRole.viewer), new_admin(AdminRole.viewer)
    with login_client(app) as client:
        fail_sign_ins(client, locked, 5)
        assert sign_in(client, locked, PASSWORD).status_code == 429
        assert sign_in(client, other, PASSWORD).status_code == 302


def test_unknown_usernames_lock_the_same_way(throttled: tuple[FastAPI, Clock]) -> None:
    # Otherwise the lock would tell which accounts exist.
    app, _clock = throttled
    nobody = f"nobody-{uuid.uuid4().hex[:8]}"
    with login_client(app) as client:
        fail_sign_ins(client, nobody, 5)
        ghost = sign_in(client, nobody, PASSWORD)
        assert ghost.status_code == 429
        assert "for this account" in ghost.text


def test_one_address_spraying_many_usernames_is_locked(
    throttled: tuple[FastAPI, Clock], query_settings: pytest.MonkeyPatch, db_engine: Engine
) -> None:
    query_settings.setenv("STRIDE_ADMIN_LOGIN_MAX_FAILURES_PER_IP", "3")
    get_settings.cache_clear()
    app, _clock = throttled
    victim, address = new_admin(AdminRole.editor), new_address()
    with login_client(app, address) as sprayer, login_client(app) as elsewhere:
        for _ in range(3):
            fail_sign_ins(sprayer, f"guess-{uuid.uuid4().hex[:8]}", 1)
        refused = sign_in(sprayer, victim, PASSWORD)
        assert refused.status_code == 429
        assert "from your network address" in refused.text
        # The account itself is not locked: its owner signs in from another address.
        assert sign_in(elsewhere, victim, PASSWORD).status_code == 302
    with db_engine.connect() as conn:
        locks = conn.execute(
            text(
                "SELECT after FROM admin_audit_log WHERE action = 'lockout'"
                " AND after->>'client_ip' = :ip AND after->>'locked' = 'client_ip'"
            ),
            {"ip": address},
        ).all()
    assert len(locks) == 1


def test_a_success_does_not_reset_the_address_count(
    throttled: tuple[FastAPI, Clock], query_settings: pytest.MonkeyPatch
) -> None:
    query_settings.setenv("STRIDE_ADMIN_LOGIN_MAX_FAILURES_PER_IP", "3")
    get_settings.cache_clear()
    app, _clock = throttled
    own = new_admin(AdminRole.viewer)
    with login_client(app) as client:
        fail_sign_ins(client, f"guess-{uuid.uuid4().hex[:8]}", 2)
        assert sign_in(client, own, PASSWORD).status_code == 302
        fail_sign_ins(client, f"guess-{uuid.uuid4().hex[:8]}", 1)
        assert sign_in(client, own, PASSWORD).status_code == 429


def test_the_lock_expires(throttled: tuple[FastAPI, Clock]) -> None:
    app, clock = throttled
    username = new_admin(AdminRole.viewer)
    with login_client(app) as client:
        fail_sign_ins(client, username, 5)
        clock.now += timedelta(minutes=14, seconds=1)
        refused = sign_in(client, username, PASSWORD)
        assert refused.status_code == 429
        assert "try again in 1 minute." in refused.text
        clock.now += timedelta(minutes=1)
        assert sign_in(client, username, PASSWORD).status_code == 302


def test_old_attempts_are_deleted_as_failures_arrive(
    throttled: tuple[FastAPI, Clock], db_engine: Engine
) -> None:
    app, clock = throttled
    stale = f"stale-{uuid.uuid4().hex[:8]}"
    with login_client(app) as client:
        clock.now -= timedelta(days=1, minutes=1)
        fail_sign_ins(client, stale, 1)
        clock.now += timedelta(days=1, minutes=1)
        fail_sign_ins(client, f"fresh-{uuid.uuid4().hex[:8]}", 1)
    with db_engine.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM admin_login_attempts WHERE username = :u"), {"u": stale}
        ).scalar_one()
    assert left == 0


def test_sign_in_attempts_are_hidden_from_the_query_page(viewer: TestClient) -> None:
    assert "admin_login_attempts" in READONLY_HIDDEN_TABLES
    response = viewer.post("/admin/query", data={"sql": "SELECT * FROM admin_login_attempts"})
    assert response.status_code == 400
    assert "permission denied for table admin_login_attempts" in response.text


# ---- viewers -----------------------------------------------------------------------------


def test_viewer_lists_searches_sorts_and_exports(viewer: TestClient, score_row: dict) -> None:
    listing = viewer.get(
        "/admin/score-log/list", params={"search": score_row["user_id"], "sortBy": "score"}
    )
    assert listing.status_code == 200
    assert listing.headers["x-frame-options"] == "DENY"
    assert listing.headers["cache-control"] == "no-store"
    assert score_row["user_id"] in listing.text
    assert f"/admin/score-log/edit/{score_row['id']}" not in listing.text

    other = viewer.get("/admin/score-log/list", params={"search": "no-such-player-anywhere"})
    assert score_row["user_id"] not in other.text

    export = viewer.get("/admin/score-log/export/csv")
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert {"id", "user_id", "score"} <= set(rows[0])
    assert any(r["user_id"] == score_row["user_id"] for r in rows)


def test_viewer_cannot_edit_or_delete(
    viewer: TestClient, score_row: dict, db_engine: Engine
) -> None:
    edit_url = f"/admin/score-log/edit/{score_row['id']}"
    refused = viewer.get(edit_url)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")  # not the API's JSON
    posted = viewer.post(
        edit_url,
        data={"user_id": "hacked", "input_value": "1", "score": "1", "formula_version": "1"},
    )
    assert posted.status_code == 403
    assert viewer.delete(f"/admin/score-log/delete?pks={score_row['id']}").status_code == 403
    with db_engine.connect() as conn:
        user_id = conn.execute(
            text("SELECT user_id FROM score_log WHERE id = :id"), {"id": score_row["id"]}
        ).scalar_one()
    assert user_id == score_row["user_id"]
    assert _audit_rows(db_engine, score_row["id"]) == []


def test_admin_users_never_show_password_hashes(owner: TestClient) -> None:
    username = new_admin(AdminRole.viewer)
    with session_scope() as session:
        user_id, password_hash = session.execute(
            text("SELECT id, password_hash FROM admin_users WHERE username = :u"), {"u": username}
        ).one()
    digest = password_hash[7:]  # the salt and hash after "$2b$12$"
    pages = [
        owner.get("/admin/admin-users/list"),
        owner.get("/admin/admin-users/export/csv"),
        owner.get("/admin/admin-users/export/json"),
        owner.get(f"/admin/admin-users/details/{user_id}"),
    ]
    for page in pages:
        assert page.status_code == 200, page.url
        assert username in page.text, page.url
        assert "password_hash" not in page.text, page.url
        assert digest not in page.text, page.url
    edit_form = owner.get(f"/admin/admin-users/edit/{user_id}")
    assert 'name="role"' in edit_form.text
    assert "password" not in edit_form.text.lower()
    # Searching by the hash finds nothing: the column is not searchable either.
    search = owner.get("/admin/admin-users/list", params={"search": digest[:20]})
    assert username not in search.text


def test_every_table_lists_exports_and_opens_rows(owner: TestClient, db_engine: Engine) -> None:
    # A leaderboard period: a composite primary key with a timestamp in it.
    game, board = f"g-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    with db_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO games (game_id, name, api_key_hash, api_key_prefix)"
                " VALUES (:g, 'Admin test game', :h, 'sk_test')"
            ),
            {"g": game, "h": uuid.uuid4().hex},
        )
        conn.execute(
            text(
                "INSERT INTO leaderboards (id, game_id, sort_order, operator, period_start)"
                " VALUES (:b, :g, 'desc', 'best', '2026-11-01T00:00:00Z')"
            ),
            {"b": board, "g": game},
        )
        conn.execute(
            text(
                "INSERT INTO leaderboard_periods (leaderboard_id, period_start)"
                " VALUES (:b, '2026-11-01T00:00:00Z')"
            ),
            {"b": board},
        )
    for table in ADMIN_TABLES:
        identity = build_view(table).identity
        assert owner.get(f"/admin/{identity}/list").status_code == 200, identity
        assert owner.get(f"/admin/{identity}/export/csv").status_code == 200, identity
    periods = owner.get("/admin/leaderboard-periods/list", params={"search": board})
    [details] = re.findall(r'href="([^"]*/leaderboard-periods/details/[^"]*)"', periods.text)
    opened = owner.get(html.unescape(details))
    assert opened.status_code == 200
    assert board in opened.text
    games = owner.get("/admin/games/list", params={"search": game})
    assert game in games.text
    assert "api_key_hash" not in games.text


def test_audit_log_is_read_only_even_for_editors(editor: TestClient) -> None:
    assert editor.get("/admin/admin-audit-log/list").status_code == 200
    assert editor.get("/admin/admin-audit-log/create").status_code == 403
    assert editor.get("/admin/admin-audit-log/edit/1").status_code == 403


# ---- editors and the audit trail ---------------------------------------------------------


def test_editor_edit_is_audited_in_the_same_transaction(
    editor: TestClient, score_row: dict, db_engine: Engine
) -> None:
    response = editor.post(
        f"/admin/score-log/edit/{score_row['id']}",
        data={
            "user_id": score_row["user_id"],
            "input_value": "4.0",
            "score": "77.5",
            "formula_version": "1",
            "save": "Save",
        },
        follow_redirects=False,
    )
    assert response.status_code == 302, response.text
    with db_engine.connect() as conn:
        score, row_tx = conn.execute(
            text("SELECT score, xmin::text FROM score_log WHERE id = :id"),
            {"id": score_row["id"]},
        ).one()
    assert score == 77.5
    [audit] = _audit_rows(db_engine, score_row["id"])
    assert audit.admin_username.startswith("editor-")
    assert audit.action == "edit"
    assert audit.before["score"] == 40.0
    assert audit.after["score"] == 77.5
    assert audit.before["user_id"] == audit.after["user_id"] == score_row["user_id"]
    assert audit.tx == row_tx  # written by the very transaction that changed the row
    trail = editor.get("/admin/admin-audit-log/list", params={"search": score_row["user_id"]})
    assert trail.status_code == 200
    assert "77.5" in trail.text


def test_editor_delete_is_audited(editor: TestClient, score_row: dict, db_engine: Engine) -> None:
    response = editor.delete(f"/admin/score-log/delete?pks={score_row['id']}")
    assert response.status_code == 200
    with db_engine.connect() as conn:
        remaining = conn.execute(
            text("SELECT count(*) FROM score_log WHERE id = :id"), {"id": score_row["id"]}
        ).scalar_one()
    assert remaining == 0
    [audit] = _audit_rows(db_engine, score_row["id"])
    assert audit.action == "delete"
    assert audit.before["user_id"] == score_row["user_id"]
    assert audit.after is None


def test_change_and_audit_row_fail_together(score_row: dict, db_engine: Engine) -> None:
    admin = mount_admin(FastAPI())
    # An actor name too long for admin_audit_log makes the audit insert fail ...
    with acting_admin("x" * 200), admin.session_maker() as session:
        session.get(ScoreLog, score_row["id"]).score = 999.0
        with pytest.raises(DataError):
            session.commit()
    # ... and a write with nobody to blame is refused outright.
    with admin.session_maker() as session:
        session.get(ScoreLog, score_row["id"]).score = 998.0
        with pytest.raises(UnauditedWriteError):
            session.commit()
    with db_engine.connect() as conn:
        score = conn.execute(
            text("SELECT score FROM score_log WHERE id = :id"), {"id": score_row["id"]}
        ).scalar_one()
    assert score == 40.0  # ... so the change was rolled back with it
    assert _audit_rows(db_engine, score_row["id"]) == []


def test_rows_created_through_the_admin_session_are_audited(db_engine: Engine) -> None:
    admin = mount_admin(FastAPI())
    player = f"created-{uuid.uuid4().hex[:8]}"
    with acting_admin("creator"), admin.session_maker() as session:
        row = ScoreLog(request_id=uuid.uuid4(), user_id=player, input_value=1.0, score=10.0)
        session.add(row)
        session.commit()
        row_id = row.id
    [audit] = _audit_rows(db_engine, row_id)
    assert (audit.admin_username, audit.action, audit.before) == ("creator", "create", None)
    assert audit.after["user_id"] == player
    assert audit.after["id"] == row_id


def test_admin_user_edits_are_audited_without_the_password_hash(
    owner: TestClient, db_engine: Engine
) -> None:
    username = new_admin(AdminRole.viewer)
    with db_engine.connect() as conn:
        user_id = conn.execute(
            text("SELECT id FROM admin_users WHERE username = :u"), {"u": username}
        ).scalar_one()
    response = owner.post(
        f"/admin/admin-users/edit/{user_id}",
        data={"role": "editor", "is_active": "y", "save": "Save"},
        follow_redirects=False,
    )
    assert response.status_code == 302, response.text
    with db_engine.connect() as conn:
        role = conn.execute(
            text("SELECT role FROM admin_users WHERE id = :id"), {"id": user_id}
        ).scalar_one()
        before, after = conn.execute(
            text(
                "SELECT before, after FROM admin_audit_log"
                " WHERE table_name = 'admin_users' AND row_pk = :pk AND action = 'edit'"
            ),
            {"pk": str(user_id)},
        ).one()
    assert role == "editor"
    assert (before["role"], after["role"]) == ("viewer", "editor")
    assert "password_hash" not in before and "password_hash" not in after


# ---- the read-only SQL page --------------------------------------------------------------


def test_query_page_shows_rows(viewer: TestClient, score_row: dict) -> None:
    user_id = score_row["user_id"]
    response = viewer.post(
        "/admin/query",
        # LIKE with '%': the statement reaches PostgreSQL untouched (no placeholder parsing).
        data={"sql": f"SELECT user_id, score FROM score_log WHERE user_id LIKE '{user_id}%'"},
    )
    assert response.status_code == 200, response.text
    assert '<table class="table' in response.text
    assert f"<td>{score_row['user_id']}</td>" in response.text
    assert "<td>40.0</td>" in response.text
    assert "1 row in" in response.text


def test_query_page_lists_the_readable_tables(viewer: TestClient) -> None:
    page = viewer.get("/admin/query")
    assert page.status_code == 200
    schema = page.text[page.text.index('id="schema-list"') :]
    [score_log_columns] = re.findall(r">score_log</dt>\s*<dd[^>]*>([^<]*)</dd>", schema)
    assert {"id", "user_id", "input_value", "score"} <= set(score_log_columns.split(", "))
    assert ">admin_users</dt>" not in schema


def test_query_page_offers_the_same_query_as_csv(viewer: TestClient, score_row: dict) -> None:
    response = viewer.post(
        "/admin/query/csv",
        data={"sql": f"SELECT user_id, score FROM score_log WHERE id = {score_row['id']}"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.splitlines() == ["user_id,score", f"{score_row['user_id']},40.0"]


def test_query_page_says_when_rows_were_truncated(
    viewer: TestClient, query_settings: pytest.MonkeyPatch
) -> None:
    query_settings.setenv("STRIDE_QUERY_ROW_LIMIT", "3")
    get_settings.cache_clear()
    response = viewer.post("/admin/query", data={"sql": "SELECT g FROM generate_series(1, 10) g"})
    assert response.status_code == 200
    assert response.text.count("<tr>") == 1 + 3  # header + the first three rows
    assert "Only the first 3 rows are shown: the query has more." in response.text
    csv_response = viewer.post(
        "/admin/query/csv", data={"sql": "SELECT g FROM generate_series(1, 10) g"}
    )
    assert csv_response.headers["x-stride-truncated"] == "true"


def test_query_page_caps_the_bytes_it_shows(
    viewer: TestClient, query_settings: pytest.MonkeyPatch
) -> None:
    query_settings.setenv("STRIDE_QUERY_BYTE_LIMIT", "1000000")
    get_settings.cache_clear()
    # 20 rows of 90 kB: 1.8 MB, of which the first 11 rows fit in 1 MB.
    sql = "SELECT g, repeat('x', 90000) AS blob FROM generate_series(1, 20) g ORDER BY g"
    response = viewer.post("/admin/query", data={"sql": sql})
    assert response.status_code == 200
    assert len(response.content) < 1_100_000
    assert response.text.count("<tr>") == 1 + 11
    assert "Only the first 11 rows are shown (at most 1 MB a page)" in response.text
    csv_response = viewer.post("/admin/query/csv", data={"sql": sql})
    assert csv_response.headers["x-stride-truncated"] == "true"
    assert len(csv_response.content) < 1_100_000
    *rows, note = csv_response.text.splitlines()[1:]
    assert [line.split(",")[0] for line in rows] == [str(g) for g in range(1, 12)]
    assert note.startswith("\"# Stopped after 11 rows at the page's limit of 1 MB")


def test_query_page_cuts_huge_cells(viewer: TestClient) -> None:
    response = viewer.post(
        "/admin/query", data={"sql": "SELECT 7 AS n, repeat('y', 5000000) AS huge, NULL AS none"}
    )
    assert response.status_code == 200
    assert len(response.content) < 100_000
    assert "<td>7</td>" in response.text
    assert "y" * 1000 + "… [cut: 5,000,000 bytes]" in response.text
    assert "y" * 1001 not in response.text
    assert "1 value too long to show whole was cut" in response.text


def test_a_huge_result_stays_out_of_the_api_memory(db_engine: Engine) -> None:
    """Twenty 5 MB rows used to be fetched whole: 100 MB of Python strings for one page."""
    tracemalloc.start()
    try:
        result = run_read_only_query(
            "SELECT g, repeat('x', 5000000) FROM generate_series(1, 20) g",
            url=get_settings().readonly_db_url,
            timeout_ms=10_000,
            row_limit=1000,
            byte_limit=5_000_000,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result.rows) == 20
    assert all(row[1].endswith("… [cut: 5,000,000 bytes]") for row in result.rows)
    assert peak < 10_000_000


@pytest.mark.parametrize(
    ("sql", "first_row"),
    [
        ("SELECT 1, 1", ["1", "1"]),
        ("VALUES (1, 'a')", ["1", "a"]),
        ("(SELECT 1) UNION (SELECT 2) ORDER BY 1", ["1"]),
        ("SELECT 1 -- a trailing comment", ["1"]),
        ("WITH t AS (SELECT 1 AS x) SELECT x FROM t", ["1"]),
        ("SELECT NULL, 'x'", [None, "x"]),
        ("SELECT pg_sleep(0)", [""]),
        ("SELECT ROW(1, 'a')", ["('1', 'a')"]),
        ("SELECT '\\x01ff'::bytea", ["\\x01ff"]),
        ("SELECT interval '1 day'", ["1 day, 0:00:00"]),
        ("SELECT", []),
        ("TABLE score_log LIMIT 0", None),
    ],
)
def test_every_kind_of_query_still_runs(
    db_engine: Engine, sql: str, first_row: list[str | None] | None
) -> None:
    result = run_read_only_query(
        sql,
        url=get_settings().readonly_db_url,
        timeout_ms=10_000,
        row_limit=1000,
        byte_limit=5_000_000,
    )
    assert (result.rows[0] if result.rows else None) == first_row


def test_query_results_keep_the_query_order_and_types(db_engine: Engine) -> None:
    result = run_read_only_query(
        "SELECT g, g * 1.5 AS half, now() > '2000-01-01' AS recent, '{\"a\": 1}'::jsonb AS doc,"
        " ARRAY[g] AS arr FROM generate_series(1, 50) g ORDER BY g DESC",
        url=get_settings().readonly_db_url,
        timeout_ms=10_000,
        row_limit=1000,
        byte_limit=5_000_000,
    )
    assert result.columns == ["g", "half", "recent", "doc", "arr"]
    assert [row[0] for row in result.rows] == [str(g) for g in range(50, 0, -1)]
    assert result.rows[0][1:] == ["75.0", "True", '{"a": 1}', "[50]"]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE score_log SET score = 0",
        "WITH gone AS (DELETE FROM score_log RETURNING id) SELECT count(*) FROM gone",
        "drop table score_log",
    ],
)
def test_query_page_rejects_writes(viewer: TestClient, sql: str, db_engine: Engine) -> None:
    with db_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM score_log")).scalar_one()
    response = viewer.post("/admin/query", data={"sql": sql})
    assert response.status_code == 400
    assert READ_ONLY_MESSAGE in response.text
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM score_log")).scalar_one() == before


def test_query_page_runs_one_statement_at_a_time(viewer: TestClient) -> None:
    response = viewer.post("/admin/query", data={"sql": "SELECT 1; SELECT 2"})
    assert response.status_code == 400
    assert "One statement at a time" in response.text


def test_read_only_transaction_stops_writes_the_checker_cannot_see(db_engine: Engine) -> None:
    # nextval() writes but reads like a SELECT; even the owner role cannot run it this way,
    # on a fresh connection or on one reused from the pool.
    for _ in range(2):
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            run_read_only_query(
                "SELECT nextval('score_log_id_seq')",
                url=get_settings().db_url,
                timeout_ms=1000,
                row_limit=10,
                byte_limit=10_000,
            )


def test_query_page_cannot_read_admin_users(editor: TestClient) -> None:
    response = editor.post("/admin/query", data={"sql": "SELECT password_hash FROM admin_users"})
    assert response.status_code == 400
    assert "Not allowed: permission denied for table admin_users" in response.text
    assert "$2b$" not in response.text


def test_query_page_stops_slow_queries(
    viewer: TestClient, query_settings: pytest.MonkeyPatch
) -> None:
    query_settings.setenv("STRIDE_QUERY_STATEMENT_TIMEOUT_MS", "200")
    get_settings.cache_clear()
    response = viewer.post("/admin/query", data={"sql": "SELECT pg_sleep(5)"})
    assert response.status_code == 400
    assert "The query ran longer than 0.2 s and was stopped" in response.text


def test_query_page_shows_sql_errors_kindly(viewer: TestClient) -> None:
    response = viewer.post("/admin/query", data={"sql": "SELECT no_such_column FROM score_log"})
    assert response.status_code == 400
    assert "SQL error: column &#34;no_such_column&#34; does not exist" in response.text
