"""Fixtures and helpers of the asset tests: the API in-process on the session's PostgreSQL
(its storage is the lake's raw zone of the test state folder), games with keys, app users,
tus upload helpers.

Test modules import the ``*_fixture`` functions they use; pytest registers them under the
names given here (``client``, ``studio``, ``player_token``)."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.main import create_app
from core.identity.app_users import create_app_user
from core.identity.game_keys import create_game
from core.platform.db import session_scope


@dataclass(frozen=True)
class Studio:
    game_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.key}


@pytest.fixture(scope="module", name="client")
def client_fixture(db_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


def new_studio() -> Studio:
    game_id = f"c-{uuid.uuid4().hex[:10]}"
    with session_scope() as session:
        key = create_game(session, game_id, game_id)
    return Studio(game_id, key.api_key)


@pytest.fixture(name="studio")
def studio_fixture(db_engine: Engine) -> Studio:
    return new_studio()


@pytest.fixture(name="player_token")
def player_token_fixture(db_engine: Engine) -> str:
    with session_scope() as session:
        return create_app_user(session, f"p-{uuid.uuid4().hex[:10]}").token


TUS = {"Tus-Resumable": "1.0.0"}


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def metadata(asset_id: str, data: bytes, **extra: str) -> str:
    fields = {"asset_id": asset_id, "sha256": hashlib.sha256(data).hexdigest(), **extra}
    return ",".join(f"{k} {b64(v)}" for k, v in fields.items())


def make_asset(client: TestClient, studio: Studio, name: str | None = None, **body) -> dict:
    response = client.post(
        "/v1/content/assets",
        json={"kind": "texture", "name": name or f"tex-{uuid.uuid4().hex[:8]}", **body},
        headers=studio.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


def create_upload(
    client: TestClient, studio: Studio, asset_id: str, data: bytes, **extra: str
) -> str:
    response = client.post(
        "/v1/content/uploads",
        headers={
            **studio.headers,
            **TUS,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(asset_id, data, **extra),
        },
    )
    assert response.status_code == 201, response.text
    return response.headers["Location"]


def patch(
    client: TestClient, studio: Studio, location: str, offset: int, chunk: bytes, **headers: str
):
    return client.patch(
        location,
        content=chunk,
        headers={
            **studio.headers,
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            **headers,
        },
    )


def upload(client: TestClient, studio: Studio, asset_id: str, data: bytes, **extra: str) -> int:
    """One whole upload in one PATCH; the version number it made."""
    location = create_upload(client, studio, asset_id, data, **extra)
    done = patch(client, studio, location, 0, data)
    assert done.status_code == 204, done.text
    return int(done.headers["Stride-Version"])
