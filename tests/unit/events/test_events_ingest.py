"""The ingest fast path: Kafka values spliced from the posted event are byte for byte what
``stamp(...).model_dump_json()`` gives, the whole-body validation falls back whenever an
event is not valid, and records are partitioned as aiokafka's ``send`` would."""

import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from api.routes.events import Stamper, _valid_batch
from core.events.contracts import IncomingGameEvent
from core.platform.kafka_batches import partition_for

GAME = "tri"
EVENT_ID = "6F1C1F7E-3D0E-4B8E-9C39-2F0F9A3C1A11"  # upper case: the value has it in lower case

PAYLOADS: dict[str, list[dict[str, Any]]] = {
    "match_result": [
        {"outcome": "win", "score": 120},
        {"outcome": "draw", "score": -5, "opponent": "bot-1", "match_id": "m/7#2"},
        {"outcome": "loss", "score": 3.0, "opponent": None},
    ],
    "score": [{"score": 10**12}, {"score": 0, "level": "Level 3: the cave"}],
    "purchase": [
        {"item": "sword", "price": "19.99", "currency": "USD"},
        {"item": "gem pack", "price": 0.1, "currency": "STRIDE"},
        {"item": "x", "price": "0.000000000000000001", "currency": "ETH"},
        {"item": "x", "price": 100, "currency": "EUR"},
        {"item": "x", "price": "1E+3", "currency": "EUR"},
        {"item": "x", "price": "123456789012345678.000000000000000000", "currency": "EUR"},
    ],
    "achievement": [{"achievement_id": "first-blood"}, {"achievement_id": "a", "points": 7}],
    "session_start": [{"session_id": "s-1"}, {"session_id": "s-1", "platform": "ios"}],
    "session_end": [
        {"session_id": "s-1", "duration_s": 321.5},
        {"session_id": "s-1", "duration_s": 0},
        {"session_id": "s-1", "duration_s": 1e-7},
    ],
}
TIMES = [
    {"occurred_at": "2026-11-22T10:00:00Z"},
    {"occurred_at": "2026-11-22T10:00:00.123456+05:30", "sent_at": "2026-11-22T10:00:01-08:00"},
    {"occurred_at": "2026-11-22T10:00:00+00:00", "sent_at": None},
    {"occurred_at": 1795341599, "sent_at": "2026-11-22T10:00:00.5Z"},
]
RECEIVED = [
    datetime(2026, 11, 22, 10, 0, 1, 250000, tzinfo=UTC),
    datetime(2026, 11, 22, 10, 0, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
]


def posted_events() -> list[dict[str, Any]]:
    events = []
    for kind, payloads in PAYLOADS.items():
        for i, payload in enumerate(payloads):
            for j, times in enumerate(TIMES):
                event = {
                    "event_id": EVENT_ID if j == 0 else str(uuid.uuid4()),
                    "player_id": f"player-{i}.x:y@z" if j % 2 else "p",
                    "type": kind,
                    "payload": {**payload, "type": kind} if i == 1 else payload,
                    **times,
                }
                if j == 1:
                    event["game_id"] = GAME
                events.append(event)
    return events


@pytest.mark.parametrize("received_at", RECEIVED, ids=["utc", "minus-3h30"])
@pytest.mark.parametrize("item", posted_events(), ids=lambda e: f"{e['type']}")
def test_the_value_is_what_stamp_gives(item: dict[str, Any], received_at: datetime) -> None:
    event = IncomingGameEvent.model_validate(item)
    expected = event.stamp(GAME, received_at)
    key, value = Stamper(GAME, received_at).record(event)
    assert value == expected.model_dump_json().encode()
    assert key == expected.player_id.encode()


def test_another_game_is_refused_as_stamp_refuses_it() -> None:
    event = IncomingGameEvent.model_validate({**posted_events()[0], "game_id": "other"})
    with pytest.raises(ValueError) as stamped:
        event.stamp(GAME, RECEIVED[0])
    with pytest.raises(ValueError) as recorded:
        Stamper(GAME, RECEIVED[0]).record(event)
    assert str(recorded.value) == str(stamped.value)
    assert "not the game of this API key" in str(recorded.value)


def body(events: Any, **extra: Any) -> bytes:
    return json.dumps({"events": events, **extra}).encode()


def test_a_valid_body_gives_the_records_in_order() -> None:
    events = posted_events()
    stamper = Stamper(GAME, RECEIVED[0])
    records = _valid_batch(body(events, note="ignored as before"), stamper)
    expected = [stamper.record(IncomingGameEvent.model_validate(e)) for e in events]
    assert records == expected


@pytest.mark.parametrize(
    "raw",
    [
        body([*posted_events()[:3], {**posted_events()[0], "type": "teleport"}]),
        body([posted_events()[0], 7]),
        body([{**posted_events()[0], "game_id": "other"}]),
        body([{**posted_events()[0], "surprise": 1}]),
        body([]),
        body([posted_events()[0]] * 1001),
        json.dumps([posted_events()[0]]).encode(),
        b'{"events": "nope"}',
        b"{nope",
        b"\xef\xbb\xbf" + body([posted_events()[0]]),
    ],
    ids=[
        "one-invalid",
        "not-an-object",
        "other-game",
        "extra-field",
        "empty",
        "too-many",
        "bare-list",
        "not-a-list",
        "not-json",
        "bom",
    ],
)
def test_anything_not_wholly_valid_goes_the_per_event_way(raw: bytes) -> None:
    assert _valid_batch(raw, Stamper(GAME, RECEIVED[0])) is None


def test_partitions_are_those_of_aiokafka_and_kafka_python() -> None:
    rnd = random.Random(7)
    keys = [f"player-{rnd.randrange(10**9)}".encode() for _ in range(500)] + [b"", b"\xff"]
    for count in (1, 3, 4, 12):
        partitions = tuple(range(count))
        for key in keys:
            chosen = partition_for(key, partitions)
            assert chosen == DefaultPartitioner()(key, list(partitions), list(partitions))
            assert chosen == (kafka_python_murmur2(key) & 0x7FFFFFFF) % count


def test_a_body_nested_deeper_than_the_parser_allows_is_a_422_not_a_500() -> None:
    from fastapi import HTTPException

    from api.routes.events import _json

    with pytest.raises(HTTPException) as refused:
        _json(b"[" * 100_000 + b"]" * 100_000)
    assert refused.value.status_code == 422
    assert "recursion limit" in str(refused.value.detail)


def test_the_documented_example_event_is_valid_for_any_games_key() -> None:
    from api.routes.events import EXAMPLE_EVENT

    event = IncomingGameEvent.model_validate(EXAMPLE_EVENT)
    assert event.game_id is None  # the key says which game: the example works with any key
    Stamper("any-game", datetime.now(UTC)).record(event)  # inside the time window, valid
