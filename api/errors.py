"""Error responses a caller can act on: every 422 names the field that was wrong."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel


class ErrorBody(BaseModel):
    """Any 4xx/5xx with one human-readable reason."""

    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    field: str
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    """A body that does not validate: one entry per wrong field, and all of them in one line."""

    detail: list[FieldError]
    message: str


def _field(loc: tuple | list) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = []
    for error in exc.errors():
        field = _field(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            field = "body"  # the location is a character offset, not a field
        detail.append(
            {
                "loc": list(error.get("loc", ())),
                "field": field,
                "msg": f"{field}: {error.get('msg', 'invalid value')}",
                "type": error.get("type", "value_error"),
            }
        )
    message = "; ".join(d["msg"] for d in detail) or "invalid request"
    return JSONResponse(status_code=422, content={"detail": detail, "message": message})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error_handler)
