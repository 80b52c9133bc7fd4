"""The events SDK against a fake HTTP transport: batching, retries with the same event ids,
Retry-After, rejected events, flush on close and in the background."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import httpx
import pytest

from stride_client import StrideAPIError, Transport
from stride_client.events import EventsClient, Rejected

Handler = Callable[[httpx.Request], httpx.Response]


class FakeApi:
    """Answers POST /v1/events/batch from a script of responses; records every batch."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.batches: list[list[dict]] = []
        self.posted = threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/events/batch"
        assert request.headers["X-Api-Key"] == "sk_test"
        events = json.loads(request.content)["events"]
        self.batches.append(events)
        self.posted.set()
        answer = self.answers.pop(0) if self.answers else accepted(len(events))
        if isinstance(answer, Exception):
            raise answer
        return answer


def accepted(count: int, rejected: list[dict] | None = None) -> httpx.Response:
    return httpx.Response(202, json={"accepted": count, "rejected": rejected or []})


def error(status: int, code: str, **headers: str) -> httpx.Response:
    body = {"detail": f"{code} happened", "code": code, "errors": []}
    return httpx.Response(status, json=body, headers=headers)


def client(api: FakeApi, sleeps: list[float], **options) -> EventsClient:
    http = httpx.Client(base_url="http://stride.test", transport=httpx.MockTransport(api))
    transport = Transport("http://stride.test", game_key="sk_test", http=http, sleep=sleeps.append)
    return EventsClient(transport, **{"flush_interval_s": None, **options})


def test_events_go_in_batches_of_batch_size_and_the_rest_on_close() -> None:
    api, sleeps = FakeApi(), []
    events = client(api, sleeps, batch_size=3)
    ids = [events.send(f"p{i}", "score", {"score": i}) for i in range(7)]
    assert [len(b) for b in api.batches] == [3, 3]
    assert events.buffered == 1
    assert events.flush().accepted == 1
    assert events.flush().accepted == 0 and len(api.batches) == 3  # nothing left: no request
    assert [e["event_id"] for b in api.batches for e in b] == ids
    assert api.batches[0][0]["payload"] == {"score": 0} and "occurred_at" in api.batches[0][0]
    events.close()
    assert events.accepted == 7 and sleeps == []
    with pytest.raises(RuntimeError, match="closed"):
        events.send("p", "score")


def test_a_batch_is_sent_again_unchanged_after_503_and_429_honouring_retry_after() -> None:
    api = FakeApi(
        error(503, "unavailable", **{"Retry-After": "7"}),
        error(429, "rate_limited"),
        httpx.ConnectError("refused"),
    )
    sleeps: list[float] = []
    with client(api, sleeps, batch_size=10) as events:
        events.send_event({"event_id": "e-1", "player_id": "p", "type": "score"})
        events.send("p", "score", event_id="e-2")
    assert len(api.batches) == 4
    assert all([e["event_id"] for e in b] == ["e-1", "e-2"] for b in api.batches)
    assert sleeps[0] == 7.0  # the server's Retry-After
    assert sleeps[1:] == [1.0, 2.0]  # exponential backoff without one (0.5 * 2**attempt)
    assert events.accepted == 2


def test_rejected_events_are_reported_never_retried() -> None:
    reasons: list[list[Rejected]] = []
    api = FakeApi(accepted(1, [{"index": 1, "event_id": "bad", "reason": "score: too big"}]))
    events = client(api, [], batch_size=2, on_rejected=reasons.append)
    events.send("p", "score", event_id="good")
    events.send("p", "score", event_id="bad")
    [[rejected]] = reasons
    assert rejected.event["event_id"] == "bad" and rejected.reason == "score: too big"
    # A batch refused whole (too large, not JSON) would be refused again: reported, dropped.
    api.answers.append(error(413, "too_large"))
    events.send("p", "score", event_id="x")
    result = events.flush()
    assert [r.event["event_id"] for r in result.rejected] == ["x"]
    assert events.buffered == 0 and len(api.batches) == 2
    events.close()


def test_a_batch_not_taken_stays_buffered_for_the_next_flush() -> None:
    api = FakeApi(error(401, "unauthorized"))
    events = client(api, [], batch_size=5)
    events.send("p", "score", event_id="kept")
    with pytest.raises(StrideAPIError) as refused:
        events.flush()
    assert refused.value.status_code == 401 and events.buffered == 1
    assert events.flush().accepted == 1
    assert [b[0]["event_id"] for b in api.batches] == ["kept", "kept"]

    now = [0.0]
    api.answers += [error(503, "unavailable", **{"Retry-After": "30"})] * 3
    patient = client(api, [], batch_size=5, retry_for_s=60, clock=lambda: now[0])
    patient.t.sleep = lambda s: now.__setitem__(0, now[0] + s)
    patient.send("p", "score", event_id="late")
    with pytest.raises(StrideAPIError, match="unavailable"):
        patient.flush()  # waits 30 s twice; a third wait would pass retry_for_s
    assert patient.buffered == 1 and now[0] == 60.0 and len(api.batches) == 5
    events.close()
    patient.close()


def test_batches_stay_under_the_apis_byte_limit() -> None:
    api = FakeApi()
    events = client(api, [], batch_size=1000)
    for i in range(5):
        events.send(f"p{i}", "score", {"blob": "x" * 300_000})
    events.close()
    assert [len(b) for b in api.batches] == [3, 2]
    assert all(len(json.dumps({"events": b})) <= 1_000_000 for b in api.batches)


def test_the_background_thread_flushes_what_waits() -> None:
    api = FakeApi()
    events = client(api, [], batch_size=100, flush_interval_s=0.05)
    events.send("p", "score", event_id="waiting")
    assert api.posted.wait(timeout=10), "the background flush never posted"
    assert [[e["event_id"] for e in b] for b in api.batches] == [["waiting"]]
    events.close()
    assert events.buffered == 0 and len(api.batches) == 1
