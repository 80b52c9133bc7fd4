"""The one HTTP plumbing of the client: base URL, credentials, the API's error shape and
retries that honour ``Retry-After``.

Every resource module calls :meth:`Transport.request`; none builds its own httpx client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

RETRIED_STATUSES = frozenset({429, 502, 503, 504})


class StrideAPIError(Exception):
    """A 4xx/5xx answer in the API's one error shape ``{detail, code, errors}``."""

    def __init__(
        self,
        status_code: int,
        code: str,
        detail: str,
        errors: list[Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status_code} {code}: {detail}")
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.errors = errors or []
        self.headers = dict(headers or {})

    @classmethod
    def from_response(cls, response: httpx.Response) -> StrideAPIError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        return cls(
            response.status_code,
            str(body.get("code") or response.reason_phrase or "error"),
            str(body.get("detail") or response.text[:200] or response.reason_phrase),
            body.get("errors") if isinstance(body.get("errors"), list) else [],
            response.headers,
        )


def retry_after_s(response: httpx.Response, default: float) -> float:
    """The server's ``Retry-After`` in seconds (delta-seconds form), else ``default``."""
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return default


class Transport:
    """Base URL + credentials + retries. ``game_key`` goes in ``X-Api-Key`` (studio and game
    server calls), ``user_token`` in ``Authorization: Bearer`` (a player's own calls).

    Requests that may be repeated safely (every GET, and writes that carry an idempotency
    key or ids the server dedupes) are retried on 429/502/503/504 and transport errors,
    waiting ``Retry-After`` when the server gives one, else exponential backoff, for at
    most ``retries`` extra attempts.
    """

    def __init__(
        self,
        base_url: str,
        *,
        game_key: str | None = None,
        user_token: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.Client | None = None,
    ) -> None:
        headers: dict[str, str] = {"User-Agent": "stride-client/1"}
        if game_key:
            headers["X-Api-Key"] = game_key
        if user_token:
            headers["Authorization"] = f"Bearer {user_token}"
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout_s)
        self.http.headers.update(headers)
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.sleep = sleep

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        retry: bool | None = None,
        ok: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send one request; return the response when it is 2xx/3xx or its status is in
        ``ok`` (e.g. 304, 412 when the caller handles them), else raise
        :class:`StrideAPIError`. ``retry`` defaults to True for GET/HEAD only."""
        may_retry = method.upper() in {"GET", "HEAD"} if retry is None else retry
        attempt = 0
        while True:
            try:
                response = self.http.request(
                    method, path, json=json, params=params, headers=headers, content=content
                )
            except httpx.TransportError:
                if not may_retry or attempt >= self.retries:
                    raise
                self.sleep(self.backoff(attempt))
                attempt += 1
                continue
            if response.status_code in ok or response.status_code < 400:
                return response
            if may_retry and response.status_code in RETRIED_STATUSES and attempt < self.retries:
                self.sleep(retry_after_s(response, self.backoff(attempt)))
                attempt += 1
                continue
            raise StrideAPIError.from_response(response)

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (),
    ) -> Iterator[httpx.Response]:
        """A response whose body is not read yet (downloads): the same statuses, errors and
        retries (before any of the body is handed out) as :meth:`request`."""
        attempt, handed = 0, False
        while True:
            try:
                with self.http.stream(method, path, params=params, headers=headers) as response:
                    if response.status_code in ok or response.status_code < 400:
                        handed = True  # from here on, an error is the caller's to handle
                        yield response
                        return
                    response.read()
                    if response.status_code in RETRIED_STATUSES and attempt < self.retries:
                        wait = retry_after_s(response, self.backoff(attempt))
                    else:
                        raise StrideAPIError.from_response(response)
            except httpx.TransportError:
                if handed or attempt >= self.retries:
                    raise
                wait = self.backoff(attempt)
            self.sleep(wait)
            attempt += 1

    def backoff(self, attempt: int) -> float:
        """The wait before retry number ``attempt`` (0-based) without a ``Retry-After``."""
        return float(min(self.max_backoff_s, self.backoff_s * (2**attempt)))
