"""The API's one error shape, and the mapping from domain errors to status codes.

Every 4xx and 5xx answers::

    {"detail": "what is wrong, in one line", "code": "not_found", "errors": [...]}

``detail`` is for people (it says what to change), ``code`` is for programs (stable), and
``errors`` lists one entry per wrong field of a body or query that did not validate (empty
otherwise). Routes raise :mod:`core.platform.errors` kinds or ``HTTPException``; nothing else
builds an error body.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.platform.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unavailable
from core.platform.versions import StaleVersion, etag

log = logging.getLogger(__name__)

STATUS_OF_CODE = {
    "bad_request": 400,
    "invalid": 422,
    "not_found": 404,
    "conflict": 409,
    "precondition_failed": 412,
    "forbidden": 403,
    "unavailable": 503,
    # Codes of their own with a status of their own (content uploads and downloads).
    "gone": 410,
    "precondition_required": 428,
    "too_large": 413,
    "unsupported_media_type": 415,
    "checksum_mismatch": 460,  # tus 1.0's Checksum Mismatch
}
CODE_OF_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    412: "precondition_failed",
    413: "too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "invalid",
    428: "precondition_required",
    429: "rate_limited",
    460: "checksum_mismatch",
    500: "internal_error",
    503: "unavailable",
}


# A refusal with a code of its own (e.g. siwe_expired) answers with its kind's status.
STATUS_OF_KIND: tuple[tuple[type[DomainError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (Forbidden, 403),
    (Unavailable, 503),
    (Invalid, 422),
)


def status_of(exc: DomainError) -> int:
    """The status of a domain refusal: by its code when the code is a kind's, else by kind."""
    if exc.code in STATUS_OF_CODE:
        return STATUS_OF_CODE[exc.code]
    return next((status for kind, status in STATUS_OF_KIND if isinstance(exc, kind)), 422)


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the value is, as FastAPI reports it")
    field: str = Field(description="The field's dotted path in the body or query")
    msg: str = Field(description="What is wrong with it, prefixed by the field")
    type: str = Field(description="A pydantic error type, e.g. missing, string_too_long")


class ErrorBody(BaseModel):
    """Every error the API answers, whatever the status."""

    detail: str = Field(description="What is wrong and, where it helps, what to do")
    code: str = Field(description="Stable machine-readable kind, e.g. not_found, invalid")
    errors: list[FieldError] = Field(
        default_factory=list, description="One entry per field that did not validate"
    )


def error_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries, one per status, each answered with :class:`ErrorBody`."""
    return {status: {"model": ErrorBody, "description": d} for status, d in descriptions.items()}


# Shared entries; routes add their own statuses next to them.
NOT_JSON = error_responses({400: "The body is not UTF-8 encoded JSON"})
INVALID = error_responses({422: "A field is missing or invalid; the message names it"})


def error_response(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "detail": detail,
        "code": code or CODE_OF_STATUS.get(status, "error"),
        "errors": errors or [],
    }
    return JSONResponse(status_code=status, content=body, headers=headers)


def _field(loc: tuple | list) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def field_errors(raw: list[dict[str, Any]] | Any) -> list[dict[str, Any]]:
    """Pydantic/FastAPI error dicts as :class:`FieldError` dicts."""
    out = []
    for error in raw:
        field = _field(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            field = "body"  # the location is a character offset, not a field
        out.append(
            {
                "loc": [p if isinstance(p, int) else str(p) for p in error.get("loc", ())],
                "field": field,
                "msg": f"{field}: {error.get('msg', 'invalid value')}",
                "type": error.get("type", "value_error"),
            }
        )
    return out


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    detail = "; ".join(e["msg"] for e in errors) or "invalid request"
    return error_response(422, detail, code="invalid", errors=errors)


async def domain_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    headers = None
    if isinstance(exc, Unavailable):
        headers = {"Retry-After": str(exc.retry_after_s)}
    elif isinstance(exc, StaleVersion) and exc.current is not None:
        headers = {"ETag": etag(exc.current)}  # RFC 9110: the current tag, to retry with
    return error_response(status_of(exc), exc.message, code=exc.code, headers=headers)


# FastAPI's answer when reading the JSON body raised something other than a decode error.
BODY_PARSE_DETAIL = "There was an error parsing the body"


def _body_parse_detail(cause: BaseException | None) -> str:
    """What was wrong with a body FastAPI could not read, where Python's reason is known."""
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        # CPython refuses to convert integers of more than 4,300 digits (quadratic time)
        return (
            "the body is not JSON this API reads: a number has more than 4,300 digits;"
            " send each number within its field's range"
        )
    return f"{BODY_PARSE_DETAIL}: send one JSON document, UTF-8 encoded"


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 400 and detail == BODY_PARSE_DETAIL:
        detail = _body_parse_detail(exc.__cause__)
    return error_response(exc.status_code, detail, headers=getattr(exc, "headers", None))


DATABASE_RETRY_AFTER_S = 5


async def database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """PostgreSQL unreachable (refused, killed, restarting, pool exhausted): a 503 the
    client can retry, never a bare 500. Other database errors are bugs and stay 500s."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        log.warning("database unavailable on %s: %s", request.url.path, exc)
        return error_response(
            503,
            "the database is unavailable; nothing was changed. Retry after a few seconds.",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        )
    return await internal_error_handler(request, exc)


async def internal_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A bug: the same shape as every error, with the request id to find it in the log."""
    request_id = getattr(request.state, "request_id", None)
    log.error("unhandled error on %s (request id %s)", request.url.path, request_id, exc_info=exc)
    return error_response(
        500,
        f"internal error; it is logged under request id {request_id}",
        code="internal_error",
        headers={"X-Request-ID": request_id} if request_id else None,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(DomainError, domain_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(DBAPIError, database_error_handler)
    app.add_exception_handler(PoolTimeout, database_error_handler)
    app.add_exception_handler(Exception, internal_error_handler)
