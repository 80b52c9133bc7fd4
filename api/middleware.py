"""ASGI middleware: a request id on every request and response, its metrics and log line.

Metrics are labelled by route *template* (``/v1/scores/{user_id}``), never by raw path, and
requests that match no route share the label ``unmatched``: the number of series is bounded
by the routes the app declares, whatever paths clients send.
"""

from __future__ import annotations

import logging
import time
import uuid

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.platform.observability import request_id_var

REQUEST_ID_HEADER = b"x-request-id"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter(
    "stride_http_requests",
    "API requests answered, by method, route template and status code",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "stride_http_request_duration_seconds",
    "API request latency until the response started, by method and route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

access_log = logging.getLogger("stride.access")


def route_label(scope: Scope) -> str:
    """The route template that served the request (a mount's prefix), else ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class RequestIdMiddleware:
    """Use the caller's ``X-Request-ID`` when it is a UUID, otherwise make one; echo it back.
    Count and time the request by route template; log one line for it (``access_log``)."""

    def __init__(self, app: ASGIApp, *, access_log_enabled: bool = True) -> None:
        self.app = app
        self.access_log_enabled = access_log_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering
        elapsed: float | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, elapsed
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed = time.perf_counter() - started
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            route = route_label(scope)
            seconds = elapsed if elapsed is not None else time.perf_counter() - started
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(seconds)
            if self.access_log_enabled:
                access_log.info(
                    "%s %s %d",
                    method,
                    route,
                    status,
                    extra={
                        "request_id": request_id,
                        "status": status,
                        "route": route,
                        "duration_ms": round(seconds * 1000, 3),
                    },
                )
            request_id_var.reset(token)


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER:
            try:
                return str(uuid.UUID(value.decode("latin-1")))
            except ValueError:
                return None
    return None
