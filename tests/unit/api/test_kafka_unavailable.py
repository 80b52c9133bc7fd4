"""api.kafka: a broker that does not acknowledge is an Unavailable (503 with Retry-After)
whose message is the cause followed by what the client does."""

from __future__ import annotations

import asyncio

import pytest

from api.kafka import RETRY_AFTER_S, EventProducer, KafkaUnavailable
from core.platform.config import Settings
from core.platform.errors import Unavailable


def test_produce_turns_kafka_unavailable_into_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    async def down(self: EventProducer) -> None:
        raise KafkaUnavailable("cannot connect to Kafka at 127.0.0.1:1")

    monkeypatch.setattr(EventProducer, "_started", down)
    producer = EventProducer(Settings())
    with pytest.raises(Unavailable) as excinfo:
        asyncio.run(producer.produce("t", [(b"k", b"v")], retry="Retry it unchanged."))
    assert excinfo.value.message == "cannot connect to Kafka at 127.0.0.1:1. Retry it unchanged."
    assert excinfo.value.retry_after_s == RETRY_AFTER_S
    assert isinstance(excinfo.value.__cause__, KafkaUnavailable)
