"""Each Faust speed patch of streams.tuning does what it says, and the app uses all of them:
the eager delivery driver behaves like an asyncio Task, the agents get raw bytes, the
monitor keeps no per-message statistics."""

from __future__ import annotations

import asyncio

import pytest
from faust.types import TP, Message

from streams.app import app, game_events_topic
from streams.tuning import (
    EagerDeliveryConsumer,
    QuietMonitor,
    RawBytesSchema,
    finish,
    speed_options,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _deliver(log: list[str], gate: asyncio.Future | None) -> str:
    log.append("start")
    if gate is not None:
        log.append(await gate)
    await asyncio.sleep(0)
    log.append("end")
    return "delivered"


@pytest.mark.anyio
async def test_a_delivery_that_suspends_is_finished_with_the_awaited_result() -> None:
    log: list[str] = []
    gate = asyncio.get_running_loop().create_future()
    coro = _deliver(log, gate)
    waiting_on = coro.send(None)
    assert waiting_on is gate and log == ["start"]
    task = asyncio.ensure_future(finish(coro, waiting_on))
    gate.set_result("room in the buffer")
    assert await task == "delivered"
    assert log == ["start", "room in the buffer", "end"]


@pytest.mark.anyio
async def test_a_failing_future_raises_inside_the_delivery() -> None:
    async def deliver(gate: asyncio.Future) -> None:
        try:
            await gate
        except KeyError:
            raise RuntimeError("seen by the delivery") from None

    gate = asyncio.get_running_loop().create_future()
    coro = deliver(gate)
    task = asyncio.ensure_future(finish(coro, coro.send(None)))
    gate.set_exception(KeyError("boom"))
    with pytest.raises(RuntimeError, match="seen by the delivery"):
        await task


@pytest.mark.anyio
async def test_cancelling_the_driver_cancels_the_delivery() -> None:
    log: list[str] = []

    async def deliver(gate: asyncio.Future) -> None:
        try:
            await gate
        except asyncio.CancelledError:
            log.append("cancelled")
            raise

    gate = asyncio.get_running_loop().create_future()
    coro = deliver(gate)
    task = asyncio.ensure_future(finish(coro, coro.send(None)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["cancelled"] and gate.cancelled()


class _Consumer(EagerDeliveryConsumer):
    """Only what wait_first touches: the flow suspension event and the base race."""

    def __init__(self) -> None:
        self.suspend_flow = asyncio.Event()
        self.raced: list[int] = []

    async def _race(self, *coros):  # stands in for Faust's wait_first
        self.raced.append(len(coros))
        done, pending = await asyncio.wait(
            [asyncio.ensure_future(c) for c in coros], return_when=asyncio.FIRST_COMPLETED
        )
        for future in pending:
            future.cancel()
        return [f.result() for f in done]


@pytest.mark.anyio
async def test_a_delivery_that_never_blocks_creates_no_race(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = _Consumer()
    monkeypatch.setattr(
        "faust.transport.drivers.aiokafka.Consumer.wait_first",
        lambda self, *coros, timeout=None: self._race(*coros),
    )

    async def deliver_at_once() -> str:
        return "delivered"

    result = await consumer.wait_first(deliver_at_once(), consumer.suspend_flow.wait())
    assert result.results == ["delivered"] and consumer.raced == []
    gate = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.01, gate.set_result, "later")
    assert await consumer.wait_first(_deliver([], gate), consumer.suspend_flow.wait()) == [
        "delivered"
    ]
    assert consumer.raced == [2]


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


def test_the_app_runs_with_the_eager_consumer_and_the_speed_options() -> None:
    from streams.app import settings

    options = speed_options(settings.streams_batch_size)
    assert app.transport.Consumer is EagerDeliveryConsumer
    assert app.conf.stream_buffer_maxsize == options["stream_buffer_maxsize"]
    assert app.conf.producer_linger == options["producer_linger"]
    assert speed_options(5000)["stream_buffer_maxsize"] == 10_000  # batch n+1 while n writes
