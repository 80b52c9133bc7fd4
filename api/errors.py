"""Error responses a caller can act on: every 422 names the field that was wrong."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def _field(loc: tuple | list) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = []
    for error in exc.errors():
        field = _field(error.get("loc", ()))
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
