"""api.body: a body over its limit is a 413 before it is read when Content-Length says so,
and as soon as it passes the limit while it streams; a body at the limit is read whole."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.types import Message

from api.body import limited, limited_body_route, read_body
from api.errors import install_error_handlers

LIMIT = 10
ADVICE = "send less"
TOO_LARGE = f"body larger than {LIMIT} bytes; {ADVICE}"


class Receiver:
    """An ASGI ``receive`` that hands out ``chunks`` one message at a time and counts them."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.calls = 0

    async def __call__(self) -> Message:
        self.calls += 1
        body = self.chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(self.chunks)}


def _request(receive: Receiver, content_length: int | None = None) -> Request:
    headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]
    return Request({"type": "http", "method": "POST", "headers": headers}, receive)


def _refused(excinfo: pytest.ExceptionInfo[HTTPException]) -> tuple[int, str]:
    return excinfo.value.status_code, str(excinfo.value.detail)


def test_declared_too_large_is_413_without_reading() -> None:
    receive = Receiver(b"x" * (LIMIT + 1))
    with pytest.raises(HTTPException) as excinfo:
        limited(_request(receive, content_length=LIMIT + 1), LIMIT, ADVICE)
    assert _refused(excinfo) == (413, TOO_LARGE)
    assert receive.calls == 0


def test_streamed_over_the_limit_is_413_as_soon_as_it_passes() -> None:
    receive = Receiver(b"x" * 6, b"x" * 6, b"x" * 6)  # no Content-Length: chunked
    with pytest.raises(HTTPException) as excinfo:
        asyncio.run(read_body(_request(receive), LIMIT, ADVICE))
    assert _refused(excinfo) == (413, TOO_LARGE)
    assert receive.calls == 2  # the third chunk is never asked for


def test_a_lying_content_length_is_caught_while_streaming() -> None:
    receive = Receiver(b"x" * 6, b"x" * 6)
    with pytest.raises(HTTPException) as excinfo:
        asyncio.run(read_body(_request(receive, content_length=5), LIMIT, ADVICE))
    assert _refused(excinfo) == (413, TOO_LARGE)


def test_a_body_at_the_limit_is_read_whole() -> None:
    receive = Receiver(b"x" * 4, b"y" * 6)
    body = asyncio.run(read_body(_request(receive, content_length=LIMIT), LIMIT, ADVICE))
    assert body == b"xxxxyyyyyy"


def test_an_envelope_widens_the_cap_but_the_message_names_the_limit() -> None:
    ok = limited(_request(Receiver(b"x" * 15), content_length=15), LIMIT, ADVICE, envelope=5)
    assert asyncio.run(ok.body()) == b"x" * 15
    with pytest.raises(HTTPException) as excinfo:
        limited(_request(Receiver(b""), content_length=16), LIMIT, ADVICE, envelope=5)
    assert _refused(excinfo) == (413, TOO_LARGE)


class Thing(BaseModel):
    name: str


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    router = APIRouter(route_class=limited_body_route(lambda _settings: 32, ADVICE))

    @router.post("/model")
    def model(body: Thing) -> dict[str, str]:
        return {"name": body.name}

    @router.post("/raw")
    async def raw(request: Request) -> dict[str, int]:  # reads its own body: not capped
        return {"size": len(await request.body())}

    @router.post("/read")
    async def read(request: Request) -> dict[str, int]:
        return {"size": len(await read_body(request, LIMIT, ADVICE))}

    app.include_router(router)
    return app


def _chunks(*chunks: bytes) -> Iterator[bytes]:
    yield from chunks


def test_routes_answer_413_in_the_error_shape() -> None:
    client = TestClient(_app())
    declared = client.post("/read", content=b"x" * (LIMIT + 1))
    assert declared.status_code == 413
    assert declared.json() == {"detail": TOO_LARGE, "code": "too_large", "errors": []}
    streamed = client.post("/read", content=_chunks(b"x" * 6, b"x" * 6))
    assert (streamed.status_code, streamed.json()["detail"]) == (413, TOO_LARGE)
    assert client.post("/read", content=b"x" * LIMIT).json() == {"size": LIMIT}


def test_the_route_class_caps_model_bodies_while_fastapi_reads_them() -> None:
    client = TestClient(_app())
    assert client.post("/model", json={"name": "ok"}).json() == {"name": "ok"}
    padded = b'{"name": "' + b"x" * 40 + b'"}'
    declared = client.post("/model", content=padded, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["detail"] == f"body larger than 32 bytes; {ADVICE}"
    streamed = client.post(
        "/model",
        content=_chunks(padded[:20], padded[20:]),
        headers={"content-type": "application/json"},
    )
    assert streamed.status_code == 413
    assert client.post("/raw", content=b"x" * 100).json() == {"size": 100}
