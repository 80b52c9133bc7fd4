"""Admin sessions live in the database: logout, deactivation, a role change or a password
reset end them at once, and a copied cookie stops working with them."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from api.admin.auth import SESSION_COOKIE
from core.identity.admin_users import create_admin_user
from core.identity.models import AdminRole, AdminUser
from core.platform.config import get_settings
from core.platform.db import session_scope
from tests.admin_helpers import PASSWORD, new_admin, sessions_of, sign_in


def _signed_in(app: FastAPI, username: str) -> tuple[TestClient, str]:
    """A signed-in client and its session cookie (to replay it later, as a thief would)."""
    client = TestClient(app)
    assert sign_in(client, username, PASSWORD).status_code == 302
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie
    return client, cookie


def _works(app: FastAPI, cookie: str) -> bool:
    with TestClient(app, cookies={SESSION_COOKIE: cookie}) as replay:
        return replay.get("/admin/", follow_redirects=False).status_code == 200


def _set(db_engine: Engine, username: str, assignment: str) -> None:
    with db_engine.begin() as conn:
        conn.execute(
            text(f"UPDATE admin_users SET {assignment} WHERE username = :u"), {"u": username}
        )


def test_a_cookie_stops_working_at_logout(app: FastAPI, db_engine: Engine) -> None:
    username = new_admin(AdminRole.viewer)
    client, cookie = _signed_in(app, username)
    assert _works(app, cookie)
    [(_id, token_hash, role, lifetime)] = sessions_of(db_engine, username)
    assert role == "viewer"
    assert lifetime.total_seconds() == 8 * 3600
    assert cookie not in token_hash  # only a digest of the secret is stored
    client.get("/admin/logout")
    assert not _works(app, cookie)
    assert sessions_of(db_engine, username) == []


def test_logout_ends_only_that_session(app: FastAPI, db_engine: Engine) -> None:
    username = new_admin(AdminRole.viewer)
    laptop, laptop_cookie = _signed_in(app, username)
    _phone, phone_cookie = _signed_in(app, username)
    laptop.get("/admin/logout")
    assert not _works(app, laptop_cookie)
    assert _works(app, phone_cookie)


def test_signing_in_again_ends_the_previous_session(app: FastAPI, db_engine: Engine) -> None:
    username = new_admin(AdminRole.viewer)
    client, first = _signed_in(app, username)
    assert sign_in(client, username, PASSWORD).status_code == 302
    assert not _works(app, first)
    assert len(sessions_of(db_engine, username)) == 1


def test_a_role_change_ends_every_session(app: FastAPI, db_engine: Engine) -> None:
    username = new_admin(AdminRole.editor)
    _client, cookie = _signed_in(app, username)
    _set(db_engine, username, "role = 'viewer'")  # even straight in the database
    assert not _works(app, cookie)


def test_deactivation_ends_sessions_for_good(app: FastAPI, db_engine: Engine) -> None:
    username = new_admin(AdminRole.editor)
    _client, cookie = _signed_in(app, username)
    with session_scope() as session:  # through the ORM, as the panel and the CLI write
        user = session.scalars(select(AdminUser).where(AdminUser.username == username)).one()
        user.is_active = False
    assert not _works(app, cookie)
    assert sessions_of(db_engine, username) == []
    _set(db_engine, username, "is_active = true")  # reactivated: the old session stays gone
    assert not _works(app, cookie)


def test_a_password_reset_ends_every_session(app: FastAPI, db_engine: Engine) -> None:
    username = new_admin(AdminRole.viewer)
    _client, cookie = _signed_in(app, username)
    with session_scope() as session:
        create_admin_user(session, username, "a brand new password", AdminRole.viewer, replace=True)
    assert not _works(app, cookie)
    assert sessions_of(db_engine, username) == []


def test_an_expired_session_is_refused(app: FastAPI, db_engine: Engine) -> None:
    username = new_admin(AdminRole.viewer)
    _client, cookie = _signed_in(app, username)
    with db_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE admin_sessions SET expires_at = now() - interval '1 second'"
                " WHERE admin_user_id = (SELECT id FROM admin_users WHERE username = :u)"
            ),
            {"u": username},
        )
    assert not _works(app, cookie)


@pytest.mark.parametrize("tampered", ["", "not-a-session", "x" * 500])
def test_a_made_up_cookie_is_refused(app: FastAPI, db_engine: Engine, tampered: str) -> None:
    assert not _works(app, tampered)


@pytest.mark.parametrize("content", [{"sid": "made-up"}, {"admin_id": 1, "pw": "0" * 16}])
def test_a_signed_cookie_without_a_session_row_is_refused(
    app: FastAPI, db_engine: Engine, content: dict
) -> None:
    """Signed with the real secret (as Starlette does), so only the session lookup refuses
    it; the second is the cookie of the code before server-side sessions."""
    payload = base64.b64encode(json.dumps(content).encode())
    cookie = TimestampSigner(get_settings().session_secret).sign(payload).decode()
    assert not _works(app, cookie)
