"""The API's request metrics are labelled by route template (bounded series whatever paths
clients send) and status code; each request logs one line with its request id."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from api.errors import install_error_handlers
from api.middleware import RequestIdMiddleware


def _app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)

    @app.get("/things/{thing_id}")
    def _thing(thing_id: int) -> int:
        return thing_id

    @app.get("/broken")
    def _broken() -> None:
        raise RuntimeError("boom")

    return app


def _count(route: str, status: str, method: str = "GET") -> float:
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("stride_http_requests_total", labels) or 0.0


def _observations(route: str) -> float:
    labels = {"method": "GET", "route": route}
    return REGISTRY.get_sample_value("stride_http_request_duration_seconds_count", labels) or 0.0


def test_requests_are_counted_by_route_template_and_status() -> None:
    client = TestClient(_app(), raise_server_exceptions=False)
    before = (
        _count("/things/{thing_id}", "200"),
        _count("/things/{thing_id}", "422"),
        _count("/broken", "500"),
        _count("unmatched", "404"),
        _observations("/things/{thing_id}"),
    )
    for thing in range(5):
        assert client.get(f"/things/{thing}").status_code == 200
    assert client.get("/things/not-a-number").status_code == 422
    assert client.get("/broken").status_code == 500
    for _ in range(3):
        assert client.get(f"/random/{uuid.uuid4()}").status_code == 404
    after = (
        _count("/things/{thing_id}", "200"),
        _count("/things/{thing_id}", "422"),
        _count("/broken", "500"),
        _count("unmatched", "404"),
        _observations("/things/{thing_id}"),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [5, 1, 1, 3, 6]
    routes = {
        sample.labels["route"]
        for metric in REGISTRY.collect()
        if metric.name == "stride_http_requests"
        for sample in metric.samples
    }
    assert not any(route.startswith("/random") for route in routes)


def test_each_request_logs_one_line_with_its_request_id(caplog) -> None:
    request_id = str(uuid.uuid4())
    with caplog.at_level(logging.INFO, logger="stride.access"):
        response = TestClient(_app()).get("/things/7", headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id
    (line,) = [r for r in caplog.records if r.name == "stride.access"]
    assert (line.getMessage(), line.status, line.route) == (
        "GET /things/{thing_id} 200",
        200,
        "/things/{thing_id}",
    )
    from core.platform.observability import JsonFormatter

    # The formatter reads the id from the context of the request that logged the line.
    assert '"status": 200' in JsonFormatter().format(line)
