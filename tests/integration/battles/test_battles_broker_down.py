"""A battle the API cannot hand to Kafka: the client gets a 503 with Retry-After; a keyless
battle is not left ``queued`` for ever (its retry is a new battle), a keyed one stays for its
retry with the same key."""

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.kafka import EventProducer, event_producer
from api.main import create_app
from cli.stack import free_port
from tests.streaming_helpers import GameWithKey, game_fixture  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


def _battles(db_engine: Engine, game_id: str) -> list[tuple[str | None, str]]:
    with db_engine.connect() as conn:
        return [
            (row.idempotency_key, row.status)
            for row in conn.execute(
                text("SELECT idempotency_key, status FROM battles WHERE game_id = :g"),
                {"g": game_id},
            )
        ]


def test_a_battle_kafka_did_not_take_is_not_left_queued(
    stack_settings, db_engine: Engine, game: GameWithKey
) -> None:
    dead_broker = stack_settings.model_copy(
        update={"kafka_bootstrap": f"127.0.0.1:{free_port()}", "kafka_produce_timeout_s": 2.0}
    )
    app = create_app()
    producer = EventProducer(dead_broker)
    app.dependency_overrides[event_producer] = lambda: producer
    headers = {"X-Api-Key": game.api_key, "X-Request-ID": str(uuid.uuid4())}
    with TestClient(app) as client:
        keyless = client.post(
            "/v1/battles", json={"mode": "duel", "sides": [["ann"], ["bob"]]}, headers=headers
        )
        keyed = client.post(
            "/v1/battles",
            json={"mode": "duel", "sides": [["cy"], ["dee"]], "idempotency_key": "k-1"},
            headers=headers,
        )
    for response in (keyless, keyed):
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"].isdigit()
        assert "retry with the same idempotency_key" in response.json()["detail"]
    assert _battles(db_engine, game.game_id) == [("k-1", "queued")]
