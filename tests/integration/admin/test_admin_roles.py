"""Who may see and change the admin tables: viewers do not see them, editors read them, only
owners change roles and active flags (never their own), and every role change is audited."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cli.main import app as cli
from core.identity.models import AdminRole
from tests.admin_helpers import PASSWORD, new_admin, sessions_of, sign_in

ADMIN_VIEWS = ("admin-users", "admin-login-attempts", "admin-sessions")


def _user(db_engine: Engine, username: str):
    with db_engine.connect() as conn:
        return conn.execute(
            text("SELECT id, role, is_active FROM admin_users WHERE username = :u"),
            {"u": username},
        ).one()


def _me(client: TestClient) -> str:
    """The username a client is signed in as (its latest session)."""
    page = client.get("/admin/")
    return page.text.split("Welcome, ", 1)[1].split("<", 1)[0].strip()


def _role_audits(db_engine: Engine, user_id: int) -> list:
    with db_engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT admin_username, action, before->>'role', after->>'role'"
                " FROM admin_audit_log WHERE table_name = 'admin_users' AND row_pk = :pk"
                " AND action = 'edit' ORDER BY id"
            ),
            {"pk": str(user_id)},
        ).all()


def _edit(client: TestClient, user_id: int, role: str, active: bool = True):
    data = {"role": role, "save": "Save"} | ({"is_active": "y"} if active else {})
    return client.post(f"/admin/admin-users/edit/{user_id}", data=data, follow_redirects=False)


def test_viewers_do_not_see_the_admin_tables(viewer: TestClient) -> None:
    index = viewer.get("/admin/")
    for identity in ADMIN_VIEWS:
        assert f"/admin/{identity}/list" not in index.text, identity
        assert viewer.get(f"/admin/{identity}/list").status_code == 403, identity
        assert viewer.get(f"/admin/{identity}/export/csv").status_code == 403, identity
        assert viewer.get(f"/admin/{identity}/details/1").status_code == 403, identity
    assert "/admin/score-log/list" in index.text  # the rest stays browsable


def test_editors_read_admin_users_but_cannot_change_roles(
    editor: TestClient, db_engine: Engine
) -> None:
    target = new_admin(AdminRole.viewer)
    user_id = _user(db_engine, target).id
    listing = editor.get("/admin/admin-users/list", params={"search": target})
    assert listing.status_code == 200
    assert target in listing.text
    assert f"/admin/admin-users/edit/{user_id}" not in listing.text
    assert editor.get(f"/admin/admin-users/edit/{user_id}").status_code == 403
    assert _edit(editor, user_id, "owner").status_code == 403
    assert _user(db_engine, target).role == "viewer"
    assert editor.get("/admin/admin-login-attempts/list").status_code == 200
    assert editor.get("/admin/admin-sessions/list").status_code == 403


def test_editors_cannot_promote_themselves(editor: TestClient, db_engine: Engine) -> None:
    me = _me(editor)
    assert _edit(editor, _user(db_engine, me).id, "owner").status_code == 403
    assert _user(db_engine, me).role == "editor"


def test_an_owner_changes_a_role_audited_and_the_user_signs_in_again(
    app: FastAPI, owner: TestClient, db_engine: Engine
) -> None:
    target = new_admin(AdminRole.viewer)
    user_id = _user(db_engine, target).id
    with TestClient(app) as theirs:
        assert sign_in(theirs, target, PASSWORD).status_code == 302
        assert _edit(owner, user_id, "editor").status_code == 302
        assert _user(db_engine, target).role == "editor"
        assert theirs.get("/admin/", follow_redirects=False).status_code == 302
    [(actor, action, before, after)] = _role_audits(db_engine, user_id)
    assert (actor, action, before, after) == (_me(owner), "edit", "viewer", "editor")


def test_nobody_changes_their_own_role_or_status(owner: TestClient, db_engine: Engine) -> None:
    me = _me(owner)
    my_id = _user(db_engine, me).id
    form = owner.get(f"/admin/admin-users/edit/{my_id}")
    assert form.status_code == 403
    assert "You cannot change your own role or active flag" in form.text
    refused = _edit(owner, my_id, "viewer", active=False)
    assert refused.status_code == 403
    assert "You cannot change your own role or active flag" in refused.text
    assert tuple(_user(db_engine, me))[1:] == ("owner", True)
    assert _role_audits(db_engine, my_id) == []
    listing = owner.get("/admin/admin-users/list", params={"search": me})
    assert f"/admin/admin-users/edit/{my_id}" not in listing.text


def test_owners_see_sessions_and_can_end_one(
    app: FastAPI, owner: TestClient, db_engine: Engine
) -> None:
    target = new_admin(AdminRole.viewer)
    with TestClient(app) as theirs:
        assert sign_in(theirs, target, PASSWORD).status_code == 302
        [(session_id, *_)] = sessions_of(db_engine, target)
        listing = owner.get("/admin/admin-sessions/list")
        assert listing.status_code == 200
        assert "token_hash" not in listing.text
        assert owner.delete(f"/admin/admin-sessions/delete?pks={session_id}").status_code == 200
        assert theirs.get("/admin/", follow_redirects=False).status_code == 302


def test_the_cli_sets_a_role_and_audits_it(db_engine: Engine) -> None:
    target = new_admin(AdminRole.editor)
    result = CliRunner().invoke(cli, ["admin", "set-role", target, "owner"])
    assert result.exit_code == 0, result.output
    assert "now owner" in result.output
    user = _user(db_engine, target)
    assert user.role == "owner"
    [(actor, action, before, after)] = _role_audits(db_engine, user.id)
    assert actor.startswith("cli:")
    assert (action, before, after) == ("edit", "editor", "owner")
    unknown = CliRunner().invoke(cli, ["admin", "set-role", "nobody-at-all", "owner"])
    assert unknown.exit_code != 0
    assert "no admin user 'nobody-at-all'" in unknown.output


def _audit_rows(db_engine: Engine, marker: str) -> dict[str, int]:
    """One audit row about admin users and one about the score log, by ``marker``."""
    ids = {}
    with db_engine.begin() as conn:
        for table in ("admin_users", "score_log"):
            ids[table] = conn.execute(
                text(
                    "INSERT INTO admin_audit_log (admin_username, action, table_name, row_pk,"
                    " before, after) VALUES (:u, 'edit', :t, '1', '{}', '{}') RETURNING id"
                ),
                {"u": marker, "t": table},
            ).scalar_one()
    return ids


def test_the_audit_log_shows_a_role_only_rows_about_tables_it_may_see(
    viewer: TestClient, editor: TestClient, db_engine: Engine
) -> None:
    marker = "audit-roles-probe"
    ids = _audit_rows(db_engine, marker)
    seen = viewer.get("/admin/admin-audit-log/list", params={"search": marker})
    assert seen.status_code == 200
    assert f"/admin/admin-audit-log/details/{ids['score_log']}" in seen.text
    assert f"/admin/admin-audit-log/details/{ids['admin_users']}" not in seen.text
    assert viewer.get(f"/admin/admin-audit-log/details/{ids['admin_users']}").status_code == 404
    exported = viewer.get("/admin/admin-audit-log/export/csv", params={"search": marker})
    assert exported.text.count(marker) == 1
    # Editors may read admin users, so they see both rows.
    both = editor.get("/admin/admin-audit-log/list", params={"search": marker})
    assert f"/admin/admin-audit-log/details/{ids['admin_users']}" in both.text
    # The SQL page's read-only role reads the same rows as a viewer (row-level security).
    sql = f"SELECT table_name FROM admin_audit_log WHERE admin_username = '{marker}'"
    answer = viewer.post("/admin/query/csv/full", data={"sql": sql})
    assert answer.status_code == 200
    assert answer.text.split() == ["table_name", "score_log"]
