"""No query of the SQL page leaves session state behind, and none can hold up a sign-in."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.admin.query import run_read_only_query
from core.identity import admin_users
from core.identity.models import AdminRole
from core.platform.config import Settings, get_settings
from tests.admin_helpers import PASSWORD, Clock, login_client, new_address, new_admin, sign_in

THROTTLE_KEY = "hashtextextended('stride.admin_login:' || %s, 0)"  # what the throttle took


def _run(sql: str) -> list[list[str | None]]:
    settings = get_settings()
    return run_read_only_query(
        sql, url=settings.readonly_db_url, timeout_ms=2000, row_limit=10, byte_limit=10_000
    ).rows


def _within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``'s result, or None if it has not returned after ``seconds``."""
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    worker.start()
    worker.join(seconds)
    return outcome[0] if outcome else None


def _sign_in_status(app: FastAPI, username: str, address: str | None = None) -> int:
    with login_client(app, address) as client:
        return sign_in(client, username, PASSWORD).status_code


def test_a_query_taking_the_throttle_lock_does_not_block_a_later_sign_in(
    throttled: tuple[FastAPI, Clock],
) -> None:
    app, _clock = throttled
    username = new_admin(AdminRole.editor)
    # The page's own runner, past the statement check: what a viewer's query reaches.
    _run(f"SELECT pg_advisory_lock(hashtextextended('stride.admin_login:user:{username}', 0))")
    assert _within(15, lambda: _sign_in_status(app, username)) == 302


def test_a_lock_held_meanwhile_does_not_block_a_sign_in(
    throttled: tuple[FastAPI, Clock], postgres: Settings
) -> None:
    """Advisory locks need no privilege: the throttle must not wait on any of them, even
    one taken on the exact keys it used to take while a slow query holds it."""
    app, _clock = throttled
    username = new_admin(AdminRole.editor)
    dsn = postgres.readonly_db_url.replace("postgresql+psycopg://", "postgresql://", 1)
    address = new_address()
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute(f"SELECT pg_advisory_lock({THROTTLE_KEY})", (f"user:{username}",))
        holder.execute(f"SELECT pg_advisory_lock({THROTTLE_KEY})", (f"ip:{address}",))
        assert _within(15, lambda: _sign_in_status(app, username, address)) == 302


def test_settings_and_locks_do_not_outlive_the_query(db_engine: Engine) -> None:
    _run("SELECT set_config('stride.leak', 'yes', false), pg_advisory_lock(4242)")
    for _ in range(3):  # whichever connection the next queries get
        [[leaked, advisory]] = _run(
            "SELECT current_setting('stride.leak', true),"
            " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory')"
        )
        assert leaked in (None, "")
        assert advisory == "0"


def test_the_page_refuses_advisory_locks_with_a_reason(viewer: TestClient) -> None:
    for sql in (
        "SELECT pg_advisory_lock(1)",
        "SELECT pg_catalog.pg_try_advisory_xact_lock(1, 2)",
        'SELECT "pg_advisory_lock_shared"(1)',
    ):
        response = viewer.post("/admin/query", data={"sql": sql})
        assert response.status_code == 400, sql
        assert "Locks cannot be taken from this page" in response.text, sql


def test_a_sign_in_waiting_on_maintenance_gives_up_with_a_reason(
    throttled: tuple[FastAPI, Clock],
    db_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only maintenance (an ALTER TABLE) can hold the throttle's table; a sign-in then waits
    a bounded time and says so, instead of hanging."""
    monkeypatch.setattr(admin_users, "LOGIN_LOCK_TIMEOUT_MS", 300)
    app, _clock = throttled
    username = new_admin(AdminRole.viewer)
    with db_engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("LOCK TABLE admin_login_attempts IN ACCESS EXCLUSIVE MODE")
        with login_client(app) as client:
            busy = _within(15, lambda: sign_in(client, username, PASSWORD))
    assert busy is not None and busy.status_code == 503
    assert "Signing in is not possible at the moment" in busy.text
    assert 'name="password"' in busy.text  # the login page itself, with the reason
    with login_client(app) as client:
        response = sign_in(client, username, PASSWORD)
        assert response.status_code == 302
