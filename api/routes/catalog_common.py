"""What the economy's routers share: the route class (credential first, capped bodies),
the 412 of a stale ``If-Match`` (the ETag plumbing itself is :mod:`api.etags`),
``Idempotency-Key``, pages, the game a caller acts in, and the deprecation headers of
``/v1`` resources that have a ``/v2``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import Header, HTTPException, Query, Request, Response

from api.auth import Caller, Handler
from api.body import limited_body_route
from api.errors import error_responses
from core.identity.ids import GAME_ID_PATTERN

MAX_BODY_BYTES = 64 * 1024
route_class = limited_body_route(
    lambda _settings: MAX_BODY_BYTES, "send one definition or request per call"
)

IdempotencyKeyHeader = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Your key of this request (e.g. a UUID): a retry with the same key is "
        "answered with the first result and never granted twice; keys never expire",
    ),
]
Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]
GameIdQuery = Annotated[
    str | None,
    Query(
        pattern=GAME_ID_PATTERN,
        description="The game (required with an app user's token; a game key implies it)",
    ),
]
RequiredGameId = Annotated[str, Query(pattern=GAME_ID_PATTERN, description="The game")]

STALE = error_responses(
    {
        412: "If-Match names no current version: read it again, its new ETag is in the message"
        " (precondition_failed); without If-Match the last write wins"
    }
)
NOT_FOUND = error_responses({404: "No such definition in this game"})
CONFLICT = error_responses({409: "The id is taken, or the request clashes with the state"})


def game_of(caller: Caller, game_id: str | None) -> str:
    """The game a read is about: the key's game, or the one an app user names."""
    if caller.game_id is not None:
        if game_id is not None and game_id != caller.game_id:
            raise HTTPException(403, f"this API key is the key of game {caller.game_id!r}")
        return caller.game_id
    if game_id is None:
        raise HTTPException(422, "game_id: required with an app user's token (?game_id=...)")
    return game_id


def now() -> datetime:
    return datetime.now(UTC)


# /v1 of packs and purchases is deprecated since /v2 shipped (docs/content.md).
V1_DEPRECATED_AT = datetime(2026, 12, 1, tzinfo=UTC)
V1_SUNSET = date(2027, 6, 1)


def deprecate_v1(response: Response, successor: str) -> None:
    """RFC 9745 ``Deprecation`` (a structured date), RFC 8594 ``Sunset`` (an HTTP date) and
    the successor's ``Link``."""
    response.headers["Deprecation"] = f"@{int(V1_DEPRECATED_AT.timestamp())}"
    sunset = datetime(V1_SUNSET.year, V1_SUNSET.month, V1_SUNSET.day, tzinfo=UTC)
    response.headers["Sunset"] = format_datetime(sunset, usegmt=True)
    response.headers["Link"] = f'<{successor}>; rel="successor-version"'


async def _as_the_app_answers(request: Request, exc: Exception) -> Response:
    """The response the app's exception handlers make of ``exc`` (the one error shape)."""
    for kind in type(exc).__mro__:
        handler = request.app.exception_handlers.get(kind)
        if handler is not None:
            response: Response = await handler(request, exc)
            return response
    raise exc


class DeprecatedRoute(route_class):  # type: ignore[valid-type, misc]
    """A ``/v1`` route with a ``/v2`` successor: every answer, errors included (401, 413,
    422, 404...), carries the deprecation headers and the successor's ``Link``."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def deprecated(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as exc:
                response = await _as_the_app_answers(request, exc)
            # Percent-encoded: a header holds Latin-1 only, a path may hold any character.
            successor = quote("/v2" + request.url.path.removeprefix("/v1"), safe="/")
            deprecate_v1(response, successor)
            return response

        return deprecated
