"""The ingest API against real PostgreSQL and Apache Kafka: keys, limits, partial acceptance."""

import asyncio
import json
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.partitioner.default import murmur2

from api.kafka import EventProducer, event_producer
from api.main import create_app
from cli.stack import free_port
from core.events.contracts import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, IncomingGameEvent
from core.platform.config import Settings
from core.platform.topics import GAME_EVENTS
from tests.streaming_helpers import (  # noqa: F401 - fixtures
    GameWithKey,
    api_fixture,
    game_fixture,
    match_event,
    post_batch,
    purchase_event,
    score_event,
    wait_for,
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


def test_another_game_is_named_with_the_event_id_as_posted(
    api: httpx.Client, game: GameWithKey
) -> None:
    headers = {"X-Api-Key": game.api_key}
    other = {**score_event("p1", 1, game_id="someone-else"), "event_id": str(uuid.uuid4()).upper()}
    body = {"events": [score_event("p1", 1), other], "client": "extra keys are ignored"}
    response = api.post("/v1/events/batch", json=body, headers=headers)
    assert response.status_code == 202
    [rejected] = response.json()["rejected"]
    assert (rejected["index"], rejected["event_id"]) == (1, other["event_id"])
    assert rejected["reason"] == (
        f"game_id 'someone-else' is not the game of this API key ({game.game_id!r})"
    )
    single = api.post("/v1/events", json=other, headers=headers)
    assert (single.status_code, single.json()["detail"]) == (422, rejected["reason"])
    empty = api.post("/v1/events/batch", json={"events": []}, headers=headers)
    assert empty.status_code == 422
    assert empty.json()["detail"] == 'body must be {"events": [...]} with at least one event'


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


def topic_records(settings: Settings, topic: str) -> list[ConsumerRecord]:
    """Every record of ``topic`` up to its end offsets at call time."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        found: list[ConsumerRecord] = []

        def at_end() -> bool:
            for batch in consumer.poll(timeout_ms=200).values():
                found.extend(batch)
            return all(consumer.position(tp) >= ends[tp] for tp in partitions)

        wait_for(f"the records of {topic}", at_end, timeout=30)
        return found
    finally:
        consumer.close()


def test_posted_events_are_written_as_stamp_writes_them(
    api: httpx.Client, game: GameWithKey, kafka: Settings
) -> None:
    events = [score_event(f"p{i}", i) for i in range(40)]
    events += [match_event(f"p{i}", "win", 3) for i in range(5)]
    events += [purchase_event("p1", "0.000000000000000001", "STRIDE")]
    events += [{**score_event("p7", 9), "event_id": str(uuid.uuid4()).upper()}]
    events += [{**score_event("p8", 9, game_id=game.game_id), "occurred_at": "2026-01-02T03:04Z"}]
    clock_ahead = datetime.now(timezone(timedelta(hours=-3, minutes=-30))) + timedelta(minutes=2)
    events += [{**score_event("p9", 9), "sent_at": clock_ahead.isoformat()}]
    single = {**score_event("p10", 10), "payload": {"score": 10, "level": "L 1"}}
    assert post_batch(api, game.api_key, events) == {"accepted": len(events), "rejected": []}
    response = api.post("/v1/events", json=single, headers={"X-Api-Key": game.api_key})
    assert response.status_code == 202
    ours = [r for r in topic_records(kafka, GAME_EVENTS) if game.game_id.encode() in r.value]
    assert len(ours) == len(events) + 1
    written = {json.loads(r.value)["event_id"]: r for r in ours}
    for posted in [*events, single]:
        record = written[str(uuid.UUID(posted["event_id"]))]
        received_at = datetime.fromisoformat(json.loads(record.value)["received_at"])
        stamped = IncomingGameEvent.model_validate(posted).stamp(game.game_id, received_at)
        assert record.value == stamped.model_dump_json().encode()
        assert record.key == posted["player_id"].encode()
        java_partition = (murmur2(record.key) & 0x7FFFFFFF) % kafka.kafka_topic_partitions
        assert record.partition == java_partition


async def _produce_both_ways(
    settings: Settings, topic: str, records: list[tuple[bytes, bytes]]
) -> dict[bytes, int]:
    """Produce ``records`` with EventProducer; returns the partition that a plain aiokafka
    ``send`` picks for each key (it sends a record per key to the same topic)."""
    producer = EventProducer(settings)
    plain = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await plain.start()
    try:
        await producer.produce(topic, records)
        keys = sorted({key for key, _ in records})
        sent = [await plain.send(topic, key=key, value=b"plain") for key in keys]
        return {
            key: meta.partition for key, meta in zip(keys, await asyncio.gather(*sent), strict=True)
        }
    finally:
        await plain.stop()
        await producer.close()


def test_records_are_batched_on_the_partition_send_picks_in_order(kafka: Settings) -> None:
    topic = f"test-batches-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 5, 1)])
    finally:
        admin.close()
    small = [(f"player-{i % 60}".encode(), f"small-{i}".encode()) for i in range(300)]
    big = [(b"big", f"big-{i}-".encode() + b"x" * 200_000) for i in range(8)]  # 512 kB batches
    records = [*small[:150], *big, *small[150:]]
    picked = asyncio.run(_produce_both_ways(kafka, topic, records))
    written = [r for r in topic_records(kafka, topic) if r.value != b"plain"]
    assert sorted((r.key, r.value) for r in written) == sorted(records)
    for record in written:
        assert record.partition == picked[record.key]
    by_partition: dict[int, list[bytes]] = {}
    for record in sorted(written, key=lambda r: (r.partition, r.offset)):
        by_partition.setdefault(record.partition, []).append(record.value)
    for values in by_partition.values():
        here = set(values)
        assert values == [v for _, v in records if v in here]  # posted order kept
