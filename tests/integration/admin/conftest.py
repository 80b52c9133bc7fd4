"""Fixtures of the admin panel's integration tests: the app, signed-in clients per role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.admin import mount_admin
from api.main import create_app
from core.identity.models import AdminRole
from core.platform.config import get_settings
from tests.admin_helpers import Clock, admin_client


@pytest.fixture(scope="module")
def app(db_engine: Engine) -> FastAPI:
    return create_app()


@pytest.fixture(scope="module")
def viewer(app: FastAPI) -> Iterator[TestClient]:
    yield from admin_client(app, AdminRole.viewer)


@pytest.fixture(scope="module")
def editor(app: FastAPI) -> Iterator[TestClient]:
    yield from admin_client(app, AdminRole.editor)


@pytest.fixture(scope="module")
def owner(app: FastAPI) -> Iterator[TestClient]:
    yield from admin_client(app, AdminRole.owner)


@pytest.fixture
def score_row(db_engine: Engine) -> dict:
    user_id = f"player-{uuid.uuid4().hex[:10]}"
    with db_engine.begin() as conn:
        row_id = conn.execute(
            text(
                "INSERT INTO score_log (request_id, user_id, input_value, score)"
                " VALUES (:r, :u, 4.0, 40.0) RETURNING id"
            ),
            {"r": uuid.uuid4(), "u": user_id},
        ).scalar_one()
    return {"id": row_id, "user_id": user_id}


@pytest.fixture
def query_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Change settings through the environment for one test, then restore them."""
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def throttled(db_engine: Engine) -> Iterator[tuple[FastAPI, Clock]]:
    """An app whose admin login reads a clock the test controls."""
    app, clock = FastAPI(), Clock()
    admin = mount_admin(app)
    admin.authentication_backend.clock = clock
    yield app, clock
