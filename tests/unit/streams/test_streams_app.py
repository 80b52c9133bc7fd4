"""The Faust app's per-message shortcuts: raw bytes to the agents, no per-message statistics."""

from __future__ import annotations

import asyncio

from faust.types import TP, Message

from streams.app import QuietMonitor, RawBytesSchema, app, game_events_topic


def _message(value: bytes) -> Message:
    return Message(
        topic="game.events.v1",
        partition=1,
        offset=5,
        timestamp=1_700_000_000.0,
        timestamp_type=0,
        headers=[],
        key=b"player-1",
        value=value,
        checksum=None,
    )


def test_the_agent_gets_the_bytes_kafka_delivered_even_when_they_are_not_json() -> None:
    """Validation (and the dead letter with the original bytes) is the agent's job."""
    decode = RawBytesSchema().compile(app)
    message = _message(b"\xff{not json")

    event = asyncio.run(decode(message))

    assert (event.key, event.value, event.message) == (b"player-1", b"\xff{not json", message)


def test_game_events_are_read_with_the_raw_schema_and_the_quiet_monitor() -> None:
    assert isinstance(game_events_topic.schema, RawBytesSchema)
    assert isinstance(app.monitor, QuietMonitor)


def test_the_quiet_monitor_keeps_no_per_message_statistics() -> None:
    monitor = QuietMonitor()
    tp = TP("game.events.v1", 1)
    message = _message(b"{}")

    monitor.on_message_in(tp, 5, message)
    assert monitor.on_stream_event_in(tp, 5, None, None) is None  # type: ignore[arg-type]
    monitor.on_message_out(tp, 5, message)

    assert monitor.messages_received_total == 0
    assert message.time_in is None
