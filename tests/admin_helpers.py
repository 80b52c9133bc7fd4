"""Admin panel test helpers: admin users, signed-in clients, the sign-in throttle's clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Row, text
from sqlalchemy.engine import Engine

from core.identity.admin_users import create_admin_user
from core.identity.models import AdminRole
from core.platform.db import session_scope

PASSWORD = "correct horse battery"


def new_admin(role: AdminRole) -> str:
    """A fresh admin user of ``role``; returns the username."""
    username = f"{role.value}-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        create_admin_user(session, username, PASSWORD, role)
    return username


def sessions_of(db_engine: Engine, username: str) -> list[Row]:
    """The admin_sessions rows (id, token_hash, role, lifetime) of ``username``."""
    with db_engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT s.id, s.token_hash, s.role, s.expires_at - s.created_at AS lifetime"
                    " FROM admin_sessions s JOIN admin_users u ON u.id = s.admin_user_id"
                    " WHERE u.username = :u ORDER BY s.id"
                ),
                {"u": username},
            )
        )


def admin_client(app: FastAPI, role: AdminRole) -> Iterator[TestClient]:
    """A client signed in as a fresh admin of ``role`` (a generator, for fixtures)."""
    with TestClient(app) as client:
        response = sign_in(client, new_admin(role), PASSWORD)
        assert response.status_code == 302, response.text
        yield client


class Clock:
    """The throttle's time, moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def new_address() -> str:
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def login_client(app: FastAPI, address: str | None = None) -> TestClient:
    """A client with an address of its own, so no other test's failures count against it."""
    return TestClient(app, client=(address or new_address(), 50000))


def sign_in(client: TestClient, username: str, password: str):
    return client.post(
        "/admin/login",
        data={"username": username, "password": password},
        follow_redirects=False,
    )


def fail_sign_ins(client: TestClient, username: str, times: int) -> None:
    for _ in range(times):
        assert sign_in(client, username, PASSWORD + "x").status_code == 400
