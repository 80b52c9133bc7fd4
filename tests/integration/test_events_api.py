"""The ingest API against real PostgreSQL and Tansu: keys, limits, partial acceptance, 503."""

import uuid

import httpx
import pytest
from fastapi.testclient import TestClient

from api.kafka import EventProducer, event_producer
from api.main import create_app
from cli.stack import free_port
from core.events import MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from tests.streaming_helpers import (  # noqa: F401 - fixtures
    GameWithKey,
    api_fixture,
    game_fixture,
    post_batch,
    score_event,
)

pytestmark = pytest.mark.integration


def test_a_missing_key_is_401_and_a_wrong_key_403(api: httpx.Client, game: GameWithKey) -> None:
    body = {"events": [score_event("p1", 1)]}
    missing = api.post("/v1/events/batch", json=body)
    assert missing.status_code == 401
    assert "X-Api-Key" in missing.json()["detail"]
    wrong = api.post("/v1/events/batch", json=body, headers={"X-Api-Key": game.api_key + "x"})
    assert wrong.status_code == 403
    single = api.post("/v1/events", json=body["events"][0], headers={"X-Api-Key": "sk_live_no"})
    assert single.status_code == 403


def test_valid_events_are_accepted_and_each_invalid_one_is_named(
    api: httpx.Client, game: GameWithKey
) -> None:
    bad_type = {**score_event("p1", 1), "type": "teleport"}
    bad_score = score_event("p1", 1)
    bad_score["payload"] = {"score": "lots"}
    other_game = score_event("p1", 1, game_id="someone-else")
    events = [score_event("p1", 1), bad_type, score_event("p2", 2), bad_score, other_game, 7]
    result = post_batch(api, game.api_key, events)
    assert result["accepted"] == 2
    rejected = {r["index"]: r for r in result["rejected"]}
    assert sorted(rejected) == [1, 3, 4, 5]
    assert rejected[1]["reason"].startswith("type:")
    assert rejected[1]["event_id"] == bad_type["event_id"]
    assert rejected[3]["reason"].startswith("payload.score:")
    assert "not the game of this API key" in rejected[4]["reason"]
    assert rejected[5]["event_id"] is None


def test_one_event_endpoint_accepts_or_explains(api: httpx.Client, game: GameWithKey) -> None:
    headers = {"X-Api-Key": game.api_key}
    ok = api.post("/v1/events", json=score_event("p1", 5), headers=headers)
    assert (ok.status_code, ok.json()) == (202, {"accepted": 1, "rejected": []})
    naive = {**score_event("p1", 5), "occurred_at": "2026-11-22T10:00:00"}
    bad = api.post("/v1/events", json=naive, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("occurred_at: Input should have timezone info")


def test_too_many_events_or_bytes_is_413(api: httpx.Client, game: GameWithKey) -> None:
    headers = {"X-Api-Key": game.api_key}
    too_many = [score_event("p1", 1) for _ in range(MAX_BATCH_EVENTS + 1)]
    response = api.post("/v1/events/batch", json={"events": too_many}, headers=headers)
    assert response.status_code == 413
    assert str(MAX_BATCH_EVENTS) in response.json()["detail"]
    padded = score_event("p1", 1)
    padded["payload"]["level"] = "x" * 100
    huge = b'{"events": [' + b",".join([httpx.Request("POST", "/", json=padded).content] * 9000)
    assert len(huge) > MAX_BATCH_BYTES
    response = api.post("/v1/events/batch", content=huge + b"]}", headers=headers)
    assert response.status_code == 413


def test_not_json_is_422(api: httpx.Client, game: GameWithKey) -> None:
    headers = {"X-Api-Key": game.api_key}
    response = api.post("/v1/events/batch", content=b"{nope", headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("body is not valid JSON")
    response = api.post("/v1/events/batch", json=[score_event("p1", 1)], headers=headers)
    assert response.status_code == 422


def test_unreachable_kafka_is_503_with_retry_after(stack_settings, game: GameWithKey) -> None:
    dead_broker = stack_settings.model_copy(
        update={"kafka_bootstrap": f"127.0.0.1:{free_port()}", "kafka_produce_timeout_s": 2.0}
    )
    app = create_app()
    producer = EventProducer(dead_broker)
    app.dependency_overrides[event_producer] = lambda: producer
    with TestClient(app) as client:
        response = client.post(
            "/v1/events/batch",
            json={"events": [score_event("p1", 1)]},
            headers={"X-Api-Key": game.api_key, "X-Request-ID": str(uuid.uuid4())},
        )
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert "Nothing from this request was accepted" in response.json()["detail"]
