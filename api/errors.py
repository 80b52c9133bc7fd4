"""The API's one error shape, and the mapping from domain errors to status codes.

Every 4xx and 5xx answers::

    {"detail": "what is wrong, in one line", "code": "not_found", "errors": [...]}

``detail`` is for people (it says what to change), ``code`` is for programs (stable), and
``errors`` lists one entry per wrong field of a body or query that did not validate (empty
otherwise). Routes raise :mod:`core.platform.errors` kinds or ``HTTPException``; nothing else
builds an error body.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.platform.errors import DomainError, Unavailable

STATUS_OF_CODE = {
    "bad_request": 400,
    "invalid": 422,
    "not_found": 404,
    "conflict": 409,
    "forbidden": 403,
    "unavailable": 503,
}
CODE_OF_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


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
    return error_response(
        STATUS_OF_CODE.get(exc.code, 422), exc.message, code=exc.code, headers=headers
    )


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(exc.status_code, detail, headers=getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(DomainError, domain_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
