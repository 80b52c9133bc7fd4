"""Request bodies read with a byte limit, the same way for every route.

A body is refused with a 413 before anything is read when its ``Content-Length`` already
says too much, and otherwise as soon as the bytes received pass the limit, so an oversized
body is never held whole, whether the route reads it itself (:func:`read_body`, or
``stream()``/``form()`` of :func:`limited`) or FastAPI parses it into a model
(:func:`limited_body_route`). The message names the limit and what to send instead.
Routes of :func:`limited_body_route` check their credential before the body is read
(:func:`api.auth.authenticating_first`).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from starlette.types import Message

from api.auth import Handler, authenticating_first
from core.platform.config import Settings, get_settings


def check_size(size: int, limit: int, advice: str, *, envelope: int = 0) -> None:
    """413 when ``size`` bytes are over ``limit`` (plus ``envelope``, see :func:`limited`)."""
    if size > limit + envelope:
        raise HTTPException(413, f"body larger than {limit} bytes; {advice}")


def limited(request: Request, limit: int, advice: str, *, envelope: int = 0) -> Request:
    """``request`` with its body capped at ``limit`` bytes, however it is read (``body()``,
    ``json()``, ``stream()``, ``form()``): 413 now when ``Content-Length`` says more, else
    as soon as more has been received. ``envelope`` bytes more are let through around the
    content (a multipart body's boundaries and part headers); the message names ``limit``.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        check_size(int(declared), limit, advice, envelope=envelope)
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            check_size(received, limit, advice, envelope=envelope)
        return message

    return Request(request.scope, receive)


async def read_body(request: Request, limit: int, advice: str) -> bytes:
    """The whole body, at most ``limit`` bytes (413 otherwise, see :func:`limited`)."""
    return await limited(request, limit, advice).body()


def limited_body_route(limit: Callable[[Settings], int], advice: str) -> type[APIRoute]:
    """A route class whose routes check their credential before reading anything
    (:func:`api.auth.authenticating_first`) and, when they have a model body (read and
    parsed by FastAPI), refuse bodies over ``limit(settings)`` bytes while they are
    received, as :func:`limited` does: a ``Content-Length`` over the limit first (nothing
    read), then the credential, then the body.

    Routes without a model body read their own body (e.g. a spooled upload) and call
    :func:`limited` with their own limit.
    """

    class LimitedBodyRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()
            if self.body_field is None:
                return authenticating_first(self.dependant, handler)
            authenticated = authenticating_first(self.dependant, handler)

            async def capped(request: Request) -> Response:
                # A route class takes no dependencies: resolve SettingsDep as FastAPI would.
                settings = request.app.dependency_overrides.get(get_settings, get_settings)()
                return await authenticated(limited(request, limit(settings), advice))

            return capped

    return LimitedBodyRoute
