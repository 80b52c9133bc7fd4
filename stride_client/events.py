"""The events SDK for game servers: buffered batches to ``POST /v1/events/batch``.

Events get their ``event_id`` when they are buffered, so every retry of a batch sends the
same ids and the platform counts each event once however often it arrives. A batch goes
out when it holds ``batch_size`` events (or nearly the API's 1 MB), when the oldest has
waited ``flush_interval_s`` (a background thread), on :meth:`EventsClient.flush`, and on
:meth:`EventsClient.close` (also at interpreter exit and at the end of a ``with`` block).
A 503 (the broker is away) or 429 (the front door's quota) is retried after the server's
``Retry-After`` (else exponential backoff) for up to ``retry_for_s``; events the API
rejects one by one (a bad field) are handed to ``on_rejected``, never retried::

    with EventsClient(Transport(url, game_key=key)) as events:
        events.send("player-7", "match_result", {"outcome": "win", "score": 1200})
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from stride_client._http import RETRIED_STATUSES, StrideAPIError, Transport, retry_after_s

log = logging.getLogger(__name__)

BATCH_PATH = "/v1/events/batch"
MAX_BATCH_EVENTS = 1000  # the API's limits (core/events/contracts.py)
MAX_BATCH_BYTES = 1_000_000
_ENVELOPE_BYTES = 64  # {"events":[...]} around the events
PERMANENT_STATUSES = frozenset({413, 422})  # the same batch would be refused again


@dataclass(frozen=True)
class Rejected:
    """An event the API refused, with its reason (e.g. a field out of range)."""

    event: dict[str, Any]
    reason: str


@dataclass(frozen=True)
class FlushResult:
    accepted: int
    rejected: list[Rejected]


class EventsClient:
    """Buffers events and posts them in batches, retried unchanged until accepted."""

    def __init__(
        self,
        transport: Transport,
        *,
        batch_size: int = 500,
        flush_interval_s: float | None = 1.0,
        retry_for_s: float = 300.0,
        on_rejected: Callable[[list[Rejected]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH_EVENTS}")
        self.t = transport
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.retry_for_s = retry_for_s
        self.on_rejected = on_rejected
        self.clock = clock
        self.accepted = 0
        self.rejected: list[Rejected] = []
        self.last_error: Exception | None = None
        self._buffer: list[tuple[dict[str, Any], int]] = []  # (event, its JSON size)
        self._buffered_bytes = 0
        self._oldest: float | None = None
        self._lock = threading.Lock()  # the buffer
        self._posting = threading.Lock()  # one batch in flight at a time, in order
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._thread: threading.Thread | None = None
        if flush_interval_s is not None:
            self._thread = threading.Thread(
                target=self._flush_in_background, name="stride-events-flush", daemon=True
            )
            self._thread.start()
        atexit.register(self.close)

    # ---- buffering -----------------------------------------------------------------------

    def send(
        self,
        player_id: str,
        type: str,
        payload: dict[str, Any] | None = None,
        *,
        event_id: str | None = None,
        occurred_at: datetime | None = None,
        **fields: Any,
    ) -> str:
        """Buffer one event; its ``event_id`` (given, or a new UUID)."""
        event = {
            "event_id": event_id or str(uuid.uuid4()),
            "player_id": player_id,
            "type": type,
            "payload": payload or {},
            "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
            **fields,
        }
        return self.send_event(event)

    def send_event(self, event: dict[str, Any]) -> str:
        """Buffer an event as the API documents it (``event_id`` and ``occurred_at`` are
        filled in when missing); its ``event_id``."""
        event = dict(event)
        event.setdefault("event_id", str(uuid.uuid4()))
        event.setdefault("occurred_at", datetime.now(UTC).isoformat())
        size = len(json.dumps(event, separators=(",", ":"), default=str)) + 1
        if size + _ENVELOPE_BYTES > MAX_BATCH_BYTES:
            raise ValueError(f"event {event['event_id']} is {size} bytes, over a batch's limit")
        with self._lock:
            if self._closed:
                raise RuntimeError("the events client is closed")
            self._buffer.append((event, size))
            self._buffered_bytes += size
            if self._oldest is None:
                self._oldest = self.clock()
            full = len(self._buffer) >= self.batch_size or (
                self._buffered_bytes + _ENVELOPE_BYTES > MAX_BATCH_BYTES
            )
        if full:
            self._flush_batches(only_full=True)
        return str(event["event_id"])

    @property
    def buffered(self) -> int:
        with self._lock:
            return len(self._buffer)

    def _take_batch(self, only_full: bool) -> list[dict[str, Any]]:
        """The next batch off the buffer (events in order, within both limits)."""
        with self._lock:
            over = self._buffered_bytes + _ENVELOPE_BYTES > MAX_BATCH_BYTES
            if only_full and len(self._buffer) < self.batch_size and not over:
                return []
            batch: list[dict[str, Any]] = []
            size = 0
            for event, event_size in self._buffer:
                if len(batch) == self.batch_size or size + event_size + _ENVELOPE_BYTES > (
                    MAX_BATCH_BYTES
                ):
                    break
                batch.append(event)
                size += event_size
            del self._buffer[: len(batch)]
            self._buffered_bytes -= size
            self._oldest = self.clock() if self._buffer else None
            return batch

    def _put_back(self, batch: list[dict[str, Any]]) -> None:
        with self._lock:
            sizes = [len(json.dumps(e, separators=(",", ":"), default=str)) + 1 for e in batch]
            self._buffer[:0] = list(zip(batch, sizes, strict=True))
            self._buffered_bytes += sum(sizes)
            self._oldest = self._oldest or self.clock()

    # ---- sending ---------------------------------------------------------------------------

    def flush(self) -> FlushResult:
        """Post everything buffered now; what was accepted and rejected by this call."""
        return self._flush_batches(only_full=False)

    def _flush_batches(self, *, only_full: bool) -> FlushResult:
        accepted, rejected = 0, []
        with self._posting:
            while batch := self._take_batch(only_full):
                try:
                    result = self._post(batch)
                except StrideAPIError as exc:
                    self.last_error = exc
                    if exc.status_code not in PERMANENT_STATUSES:
                        self._put_back(batch)  # kept for the next flush (e.g. a new key)
                        raise
                    # The batch itself is refused (too large, not the documented JSON):
                    # sending it again cannot help. Each event is reported, none kept.
                    result = self._refused(batch, exc.detail)
                except Exception as exc:
                    self.last_error = exc
                    self._put_back(batch)  # still unsent (API unreachable past retry_for_s)
                    raise
                accepted += result.accepted
                rejected += result.rejected
        return FlushResult(accepted, rejected)

    def _post(self, batch: list[dict[str, Any]]) -> FlushResult:
        """One batch, sent again unchanged (same event ids) until the API takes it."""
        deadline = self.clock() + self.retry_for_s
        attempt = 0
        while True:
            try:
                response = self.t.request(
                    "POST",
                    BATCH_PATH,
                    json={"events": batch},
                    retry=False,
                    ok=tuple(RETRIED_STATUSES),
                )
            except httpx.TransportError as exc:
                error: Exception = exc
                wait = self.t.backoff(attempt)
            else:
                if response.status_code not in RETRIED_STATUSES:
                    return self._accepted(batch, response.json())
                error = StrideAPIError.from_response(response)
                wait = retry_after_s(response, self.t.backoff(attempt))
            if self.clock() + wait > deadline:
                raise error
            log.info("events batch not taken (%s); sending it again in %.1fs", error, wait)
            self.t.sleep(wait)
            attempt += 1

    def _accepted(self, batch: list[dict[str, Any]], body: dict[str, Any]) -> FlushResult:
        rejected = [Rejected(batch[r["index"]], r["reason"]) for r in body.get("rejected", [])]
        self.accepted += int(body["accepted"])
        self.rejected += rejected
        if rejected and self.on_rejected:
            self.on_rejected(rejected)
        return FlushResult(int(body["accepted"]), rejected)

    def _refused(self, batch: list[dict[str, Any]], reason: str) -> FlushResult:
        rejected = [Rejected(event, reason) for event in batch]
        self.rejected += rejected
        if self.on_rejected:
            self.on_rejected(rejected)
        return FlushResult(0, rejected)

    def _flush_in_background(self) -> None:
        assert self.flush_interval_s is not None
        while True:
            with self._lock:
                if self._closed:
                    return
                due = None if self._oldest is None else self._oldest + self.flush_interval_s
                now = self.clock()
                if due is None or due > now:
                    self._wake.wait(self.flush_interval_s if due is None else due - now)
                    continue
            try:
                self._flush_batches(only_full=False)
            except Exception as exc:  # kept in last_error; the next flush tries again
                log.warning("events flush failed: %s", exc)
                with self._lock:
                    if self._closed:
                        return
                    self._wake.wait(self.flush_interval_s)

    # ---- shutdown ----------------------------------------------------------------------

    def close(self) -> FlushResult:
        """Flush what is buffered, then stop (again: a no-op)."""
        with self._lock:
            if self._closed:
                return FlushResult(0, [])
            self._closed = True
            self._wake.notify_all()
        atexit.unregister(self.close)
        if self._thread is not None:
            self._thread.join(timeout=self.retry_for_s + 5)
        return self._flush_batches(only_full=False)

    def __enter__(self) -> EventsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
