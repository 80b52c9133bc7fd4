"""One error shape for every status: domain errors, HTTPException, validation, unknown routes."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from api.errors import ErrorBody, install_error_handlers
from api.main import create_app
from core.platform.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable


class Body(BaseModel):
    name: str = Field(max_length=3)


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    raises = {
        "invalid": Invalid("score must be positive"),
        "not_found": NotFound("no leaderboard 'x'"),
        "conflict": Conflict("id 'x' is taken"),
        "forbidden": Forbidden("another game's leaderboard"),
        "unavailable": Unavailable("Kafka is down", retry_after_s=7),
    }

    @app.get("/raise/{kind}")
    def _raise(kind: str) -> None:
        raise raises[kind]

    @app.get("/http")
    def _http() -> None:
        raise HTTPException(413, "body larger than 10 bytes")

    @app.post("/body")
    def _body(body: Body) -> None:
        return None

    return app


@pytest.mark.parametrize(
    ("kind", "status", "detail"),
    [
        ("invalid", 422, "score must be positive"),
        ("not_found", 404, "no leaderboard 'x'"),
        ("conflict", 409, "id 'x' is taken"),
        ("forbidden", 403, "another game's leaderboard"),
        ("unavailable", 503, "Kafka is down"),
    ],
)
def test_domain_errors_map_to_status_and_shape(kind: str, status: int, detail: str) -> None:
    response = TestClient(_app()).get(f"/raise/{kind}")
    assert response.status_code == status
    assert response.json() == {"detail": detail, "code": kind, "errors": []}
    ErrorBody.model_validate(response.json())
    if kind == "unavailable":
        assert response.headers["retry-after"] == "7"


def test_http_exceptions_and_unknown_routes_use_the_same_shape() -> None:
    client = TestClient(_app())
    too_large = client.get("/http")
    assert too_large.status_code == 413
    assert too_large.json() == {
        "detail": "body larger than 10 bytes",
        "code": "too_large",
        "errors": [],
    }
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_validation_errors_list_each_field_and_join_them_in_detail() -> None:
    response = TestClient(_app()).post("/body", json={"name": "toolong"})
    assert response.status_code == 422
    body = ErrorBody.model_validate(response.json())
    assert body.code == "invalid"
    assert [e.field for e in body.errors] == ["name"]
    assert body.detail.startswith("name: ") and "3 characters" in body.detail


def test_admin_pages_keep_their_html_errors() -> None:
    """The admin panel is a mounted sqladmin app with its own HTML error pages: the API's
    JSON handlers must not answer for it."""
    response = TestClient(create_app()).get("/admin/no-such-page/at/all")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
