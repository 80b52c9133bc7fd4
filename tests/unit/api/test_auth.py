"""api.auth: the game key and app user dependencies answer 401 when the credential is
missing, 403 when it is not valid, and the owner's id otherwise (cached lookups per app)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.auth import AppUserDep, GameDep
from api.errors import install_error_handlers
from core.platform.db import get_engine


class FakeLookup:
    """A CachedCredentialLookup without a database: ``owners`` maps secrets to owner ids."""

    def __init__(self, owners: dict[str, str]) -> None:
        self.owners = owners
        self.cached: dict[str, str | None] = {}
        self.lookups = 0

    def cached_owner(self, secret: str) -> tuple[bool, str | None]:
        if secret in self.cached:
            return True, self.cached[secret]
        return False, None

    def owner_for(self, secret: str) -> str | None:
        self.lookups += 1
        self.cached[secret] = self.owners.get(secret)
        return self.cached[secret]


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.dependency_overrides[get_engine] = lambda: None  # the fakes need no database
    app.state.game_key_authenticator = FakeLookup({"sk_live_good": "tri"})
    app.state.app_token_authenticator = FakeLookup({"su_good": "cleo"})

    @app.get("/game")
    def game(game_id: GameDep) -> str:
        return game_id

    @app.get("/user")
    def user(user_id: AppUserDep) -> str:
        return user_id

    return TestClient(app)


def test_game_key_missing_is_401(client: TestClient) -> None:
    response = client.get("/game")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "ApiKey"
    assert response.json()["code"] == "unauthorized"
    assert response.json()["detail"].startswith("missing X-Api-Key header")
    assert client.get("/game", headers={"X-Api-Key": ""}).status_code == 401


def test_game_key_not_valid_is_403(client: TestClient) -> None:
    response = client.get("/game", headers={"X-Api-Key": "sk_live_bad"})
    assert response.status_code == 403
    assert response.json()["detail"] == "X-Api-Key is not the key of any active game"


def test_a_valid_game_key_names_its_game_and_is_cached(client: TestClient) -> None:
    lookup = client.app.state.game_key_authenticator  # type: ignore[attr-defined]
    for _ in range(3):
        assert client.get("/game", headers={"X-Api-Key": "sk_live_good"}).json() == "tri"
    assert lookup.lookups == 1


@pytest.mark.parametrize("header", [None, "", "su_good", "Basic su_good", "Bearer ", "Bearer  "])
def test_bearer_token_missing_or_malformed_is_401(client: TestClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/user", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer <token>" in response.json()["detail"]


def test_bearer_token_not_valid_is_403(client: TestClient) -> None:
    response = client.get("/user", headers={"Authorization": "Bearer su_bad"})
    assert response.status_code == 403
    assert response.json()["detail"] == "the bearer token is not the token of any active app user"


def test_a_valid_bearer_token_names_its_user(client: TestClient) -> None:
    assert client.get("/user", headers={"Authorization": "bearer  su_good "}).json() == "cleo"
