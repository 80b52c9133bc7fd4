"""Every authenticated route checks its credential before it reads the body: a request
without a valid game key or app token gets its 401/403 (the API's error shape) and nothing
of its body is received, let alone parsed. The real app and the real PostgreSQL (credential
lookups), called as uvicorn calls it; and uvicorn itself, whose answer to a body that never
arrives comes at once."""

from __future__ import annotations

import asyncio
import http.client
import importlib
import json
import pkgutil
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.engine import Engine
from starlette.types import Message

import api.routes
from api.auth import (
    authenticated_caller,
    authenticated_game,
    authenticated_user,
    credential_dependency,
)
from api.main import create_app
from cli.proxy import upstream_socket
from core.identity.app_users import create_app_user
from core.platform.config import Settings
from core.platform.db import session_scope
from tests.streaming_helpers import GameWithKey, game_fixture  # noqa: F401

pytestmark = pytest.mark.integration

BODY = json.dumps({"user_id": "player-1", "input": 1.0}).encode()


@dataclass
class RecordingBody:
    """An ASGI ``receive`` that hands out ``BODY`` and records every time it is asked."""

    reads: int = 0

    async def __call__(self) -> Message:
        self.reads += 1
        return {"type": "http.request", "body": BODY, "more_body": False}


@dataclass
class Answer:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


def call(app: FastAPI, method: str, path: str, headers: dict[str, str]) -> tuple[Answer, int]:
    """(the answer, how many times the app asked for the body) of one request."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    receive, answer = RecordingBody(), Answer()
    asyncio.run(app(scope, receive, answer))
    return answer, receive.reads


@pytest.fixture(scope="module")
def app(db_engine: Engine) -> FastAPI:
    return create_app()


def authenticated_routes(app: FastAPI) -> list[tuple[str, str, Any]]:
    """(method, path with its parameters filled in, credential dependency) of every POST
    route of every router module of ``api.routes`` that needs a credential."""
    found = []
    for module in pkgutil.iter_modules(api.routes.__path__):
        router = getattr(importlib.import_module(f"api.routes.{module.name}"), "router", None)
        for route in getattr(router, "routes", []):
            if not isinstance(route, APIRoute) or "POST" not in route.methods:
                continue
            dependency = credential_dependency(route.dependant)
            if dependency is not None:
                path = route.path.replace("{leaderboard_id}", "board-1")
                found.append(("POST", path, dependency))
    return found


def test_the_routes_that_need_a_credential_are_found(app: FastAPI) -> None:
    paths = {path for _, path, _ in authenticated_routes(app)}
    assert {
        "/v1/events",
        "/v1/events/batch",
        "/v1/get_score",
        "/v1/leaderboards",
        "/v1/leaderboards/board-1/reset",
        "/v1/wearables/fitbit",
        "/v1/wearables/oura",
        "/v1/wearables/apple_health",
        "/v1/wearables/audio",
    } <= paths


WRONG = {
    authenticated_game: {"X-Api-Key": "sk_live_not-a-key"},
    authenticated_user: {"Authorization": "Bearer su_not-a-token"},
    authenticated_caller: {"X-Api-Key": "sk_live_not-a-key"},
}


def test_a_missing_credential_is_a_401_before_the_body_is_read(app: FastAPI) -> None:
    for method, path, _ in authenticated_routes(app):
        answer, reads = call(app, method, path, {})
        assert answer.status == 401, (path, answer.body)
        assert json.loads(answer.body)["code"] == "unauthorized"
        assert reads == 0, f"{path} read the body of a request without a credential"


def test_a_wrong_credential_is_a_403_before_the_body_is_read(app: FastAPI) -> None:
    routes = authenticated_routes(app)
    tried = [(m, p, WRONG[d]) for m, p, d in routes]
    tried.append(("POST", "/v1/get_score", WRONG[authenticated_user]))  # either credential
    for method, path, headers in tried:
        answer, reads = call(app, method, path, headers)
        assert answer.status == 403, (path, answer.body)
        assert json.loads(answer.body)["code"] == "forbidden"
        assert reads == 0, f"{path} read the body of a request with a wrong credential"


def test_a_valid_credential_reads_the_body(app: FastAPI, game: GameWithKey) -> None:
    answer, reads = call(app, "POST", "/v1/get_score", {"X-Api-Key": game.api_key})
    assert answer.status == 200, answer.body
    assert reads >= 1
    assert json.loads(answer.body)["user_id"] == "player-1"


def test_a_valid_app_token_reads_the_body_and_checks_its_user(app: FastAPI) -> None:
    user_id = f"cred-{uuid.uuid4().hex[:10]}"
    with session_scope() as session:
        token = create_app_user(session, user_id).token
    other = call(app, "POST", "/v1/get_score", {"Authorization": f"Bearer {token}"})
    assert other[0].status == 403  # the body's user_id is another user: read, then refused
    assert other[1] >= 1


def _unix_request(settings: Settings, request: bytes) -> tuple[int, dict[str, Any]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)  # an answer that waited for the body would never come
        sock.connect(str(upstream_socket(settings)))
        sock.sendall(request)
        answer = http.client.HTTPResponse(sock)  # type: ignore[arg-type]
        answer.begin()
        return answer.status, json.loads(answer.read())


def test_uvicorn_answers_a_body_that_never_arrives_at_once(live_api: str, stack_settings) -> None:
    """Straight to uvicorn's socket (nginx would buffer the body first): headers that
    announce 10,000 bytes (under every cap), none sent, no credential: the 401 comes
    without them."""
    for path in ("/v1/get_score", "/v1/wearables/fitbit", "/v1/leaderboards"):
        status, body = _unix_request(
            stack_settings,
            f"POST {path} HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
            "Content-Length: 10000\r\n\r\n".encode(),
        )
        assert (status, body["code"]) == (401, "unauthorized"), path
