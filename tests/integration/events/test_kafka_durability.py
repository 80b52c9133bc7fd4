"""The local Apache Kafka is durable: a broker restart in the middle of a stream loses
nothing that the API accepted, and nothing is applied twice.

A game server posts batches without pause while the broker is stopped and started again
(`stride down kafka && stride up kafka`). It does what the API's 503 (and the front door's
429) asks: it retries a refused batch unchanged until it is accepted. Every event must then
be applied exactly once, whether the broker had it before the restart, got it from a retry,
or both.
"""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from cli.stack import Stack
from tests.streaming_helpers import (  # noqa: F401 - fixtures
    GameWithKey,
    api_fixture,
    game_fixture,
    score_event,
    totals,
    wait_for,
    wait_processed,
    worker_fixture,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]

BATCH = 50


class GameServer(threading.Thread):
    """Posts batches of fresh events until stopped; remembers what was accepted."""

    def __init__(self, base_url: str, api_key: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=base_url, timeout=30)
        self.api_key = api_key
        self.accepted: list[str] = []
        self.refused = 0  # 503: the broker is away
        self.throttled = 0  # 429: the front door's quota
        self.batches = 0
        self.stop_requested = threading.Event()
        self.progress = threading.Condition()

    def run(self) -> None:
        n = 0
        events: list[dict] = []
        while not self.stop_requested.is_set():
            if not events:  # the last batch was accepted: a new one
                events = [score_event(f"p{(n + i) % 7}", 1) for i in range(BATCH)]
                n += BATCH
            response = self.client.post(
                "/v1/events/batch", json={"events": events}, headers={"X-Api-Key": self.api_key}
            )
            if response.status_code == 202:
                assert response.json() == {"accepted": BATCH, "rejected": []}
                self.accepted += [e["event_id"] for e in events]
                events = []
            elif response.status_code == 429:
                # The front door's per-key quota: 503s come back fast while the broker is
                # away, so a tight retry loop can outrun it. Retried unchanged, like a 503.
                assert response.headers["Retry-After"].isdigit()
                self.throttled += 1
            else:
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"].isdigit()
                self.refused += 1
            with self.progress:
                self.batches += 1
                self.progress.notify_all()

    def wait_batches(self, count: int, timeout: float = 60.0) -> None:
        with self.progress:
            target = self.batches + count
            assert self.progress.wait_for(lambda: self.batches >= target, timeout), (
                f"the game server posted fewer than {count} batches in {timeout}s"
            )


def test_a_broker_restart_mid_stream_loses_nothing_and_applies_nothing_twice(
    live_api: str, game: GameWithKey, stack: Stack, db_engine: Engine
) -> None:
    server = GameServer(live_api, game.api_key)
    server.start()
    try:
        server.wait_batches(20)  # streaming
        stack.stop("kafka", report=lambda _m: None)
        server.wait_batches(5)  # posts answered while the broker is away
        stack.up(["kafka"], report=lambda _m: None)
        accepted_before = len(server.accepted)
        server.wait_batches(20)
        assert len(server.accepted) > accepted_before, "nothing accepted after the restart"
    finally:
        server.stop_requested.set()
        server.join(60)

    assert server.refused > 0, "the broker was never seen down: the test proved nothing"
    wait_processed(db_engine, game.game_id, len(server.accepted), timeout=120)
    with db_engine.connect() as conn:
        applied = set(
            conn.execute(
                text("SELECT event_id::text FROM processed_events WHERE game_id = :g"),
                {"g": game.game_id},
            ).scalars()
        )
    assert applied == set(server.accepted)
    assert sum(t["events"] for t in totals(db_engine, game.game_id).values()) == len(
        server.accepted
    )


def test_events_accepted_before_a_restart_are_still_there_after_it(
    stack: Stack, stack_settings, game: GameWithKey, api: httpx.Client, db_engine: Engine
) -> None:
    """Records survive the restart on disk: a new consumer group reads them from offset 0."""
    from kafka import KafkaConsumer, TopicPartition

    from core.platform.topics import GAME_EVENTS

    tag = uuid.uuid4().hex
    events = [score_event(f"{tag}-{i}", i) for i in range(10)]
    response = api.post(
        "/v1/events/batch", json={"events": events}, headers={"X-Api-Key": game.api_key}
    )
    assert response.status_code == 202
    stack.stop("kafka", report=lambda _m: None)
    stack.up(["kafka"], report=lambda _m: None)

    consumer = KafkaConsumer(
        bootstrap_servers=stack_settings.kafka_bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=500,
    )
    try:
        partitions = [
            TopicPartition(GAME_EVENTS, p) for p in consumer.partitions_for_topic(GAME_EVENTS)
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        found: set[bytes] = set()

        def all_found() -> bool:
            found.update(r.key for r in consumer if tag.encode() in (r.key or b""))
            return len(found) == len(events)

        wait_for("the records posted before the restart", all_found, timeout=60)
    finally:
        consumer.close()
