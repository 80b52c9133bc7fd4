"""A database outage answers 503 with Retry-After in the one error shape, never a bare 500;
other bugs answer a JSON 500 with the request id."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from api.errors import install_error_handlers
from api.middleware import RequestIdMiddleware
from cli.stack import free_port


def _app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    gone = create_engine(f"postgresql+psycopg://x:y@127.0.0.1:{free_port()}/z")

    @app.get("/read")
    def _read() -> int:
        with gone.connect() as conn:
            return int(conn.execute(text("SELECT 1")).scalar_one())

    @app.get("/bug")
    def _bug() -> None:
        raise RuntimeError("boom")

    return app


def test_an_unreachable_database_is_a_503_to_retry() -> None:
    response = TestClient(_app()).get("/read")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["code"] == "unavailable"
    assert "database is unavailable" in response.json()["detail"]


def test_a_bug_is_a_json_500_with_the_request_id() -> None:
    client = TestClient(_app(), raise_server_exceptions=False)
    response = client.get("/bug")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal_error"
    assert response.headers["x-request-id"] in body["detail"]
