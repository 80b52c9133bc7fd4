"""streams.pipeline: decoding splits valid from dead-lettered messages, and a step is retried
while a dependency is down but a bug stops the agent."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from tenacity import wait_none

from core.platform.messages import DeadLetter
from streams import pipeline


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _event(value: bytes, offset: int, timestamp: float | None = 1_700_000_000.0):  # type: ignore[no-untyped-def]
    message = SimpleNamespace(
        topic="t.v1", partition=3, offset=offset, key=b"k", value=value, timestamp=timestamp
    )
    return SimpleNamespace(message=message)


def _parse(raw: bytes) -> int:
    return int(raw)  # ValueError for anything else


NUMBERS = pipeline.Pipeline(
    name="numbers",
    parse=_parse,
    write=lambda valid: len(valid),
    outcome=lambda n: pipeline.Outcome(f"{n} written"),
    dead_letter_topic="t.dlq.v1",
)


def test_decode_keeps_where_a_message_came_from_and_dead_letters_the_rest() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    valid, dead = pipeline.decode(
        NUMBERS,
        [_event(b"7", 10), _event(b"seven", 11), _event(b"8", 12, timestamp=None)],  # type: ignore[list-item]
        now,
    )
    assert [(c.value, c.partition, c.offset) for c in valid] == [(7, 3, 10), (8, 3, 12)]
    assert valid[0].record_time == datetime.fromtimestamp(1_700_000_000, UTC)
    assert valid[1].record_time == now  # no record timestamp: the time it was consumed
    [(key, value)] = dead
    letter = DeadLetter.model_validate_json(value)
    assert key == b"k"
    assert (letter.source_topic, letter.partition, letter.offset) == ("t.v1", 3, 11)
    assert letter.original_value() == b"seven" and "invalid literal" in letter.reason


@pytest.mark.anyio
async def test_a_step_is_retried_while_its_dependency_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pipeline, "wait_exponential", lambda **_: wait_none())
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise OSError("connection refused")
        return "done"

    assert await pipeline.until_done("flaky", flaky) == "done"
    assert calls == 3


@pytest.mark.anyio
async def test_a_bug_is_not_retried() -> None:
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await pipeline.until_done("broken", broken)
    assert calls == 1


@pytest.mark.anyio
async def test_handle_dead_letters_then_writes_then_publishes() -> None:
    order: list[str] = []

    async def send(topic: str, records: list) -> None:
        order.append(f"send {topic} {len(records)}")

    publishing = pipeline.Pipeline(
        name="numbers",
        parse=_parse,
        write=lambda valid: order.append("write") or len(valid),
        outcome=lambda n: pipeline.Outcome(f"{n}", publish={"out.v1": [(None, b"x")] * n}),
        dead_letter_topic="t.dlq.v1",
    )
    valid, dead = pipeline.decode(
        publishing,
        [_event(b"1", 0), _event(b"x", 1), _event(b"2", 2)],
        datetime.now(UTC),  # type: ignore[list-item]
    )
    outcome = await pipeline.handle(publishing, valid, dead, send)
    assert order == ["send t.dlq.v1 1", "write", "send out.v1 2"]
    assert outcome.summary == "2"


def test_request_ids_come_from_the_records_headers() -> None:
    def with_headers(headers: object, offset: int) -> SimpleNamespace:
        event = _event(b"1", offset)
        event.message.headers = headers
        return event

    events = [
        with_headers([("x-request-id", b"r-1"), ("other", b"z")], 0),
        with_headers({"x-request-id": b"r-2"}, 1),
        with_headers(None, 2),
        with_headers([], 3),
    ]
    assert pipeline.request_ids(events) == ["r-1", "r-2"]  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_dead_letters_are_counted_per_agent_and_topic() -> None:
    from prometheus_client import REGISTRY

    labels = {"agent": "numbers", "topic": "t.dlq.v1"}

    def counted() -> float:
        return REGISTRY.get_sample_value("stride_stream_dead_letters_total", labels) or 0.0

    async def send(_topic: str, _records: list) -> None:
        return None

    before = counted()
    events = [_event(b"x", 0), _event(b"1", 1), _event(b"y", 2)]
    valid, dead = pipeline.decode(NUMBERS, events, datetime.now(UTC))  # type: ignore[arg-type]
    await pipeline.handle(NUMBERS, valid, dead, send)
    assert counted() - before == 2


class _Stream:
    """A stream whose takes are given, recording the acks; a take after the first is handed
    over once the first write has begun, and the stream ends when every event is acked."""

    def __init__(self, takes: list[list[SimpleNamespace]], writing: threading.Event) -> None:
        self.takes, self.writing, self.acked = takes, writing, []
        self.total = sum(len(t) for t in takes)
        self.handed = 0  # takes the agent has taken in (the generator resumed after each)

    async def take_events(self, _max: int, within: float):  # type: ignore[no-untyped-def]
        for index, take in enumerate(self.takes):
            if index == 1:
                while not self.writing.is_set():
                    await asyncio.sleep(0.001)  # until the first write is in its thread
            yield take
            self.handed = index + 1
        while len(self.acked) < self.total:
            await asyncio.sleep(0.001)  # until the agent acked everything

    async def ack(self, event: SimpleNamespace) -> None:
        self.acked.append(event.message.offset)


def _counted_event(value: bytes, offset: int) -> SimpleNamespace:
    event = _event(value, offset)
    event.message.incref = lambda: None
    event.message.headers = None
    return event


@pytest.mark.anyio
async def test_run_coalesced_writes_what_queued_behind_a_write_as_one_batch_in_order() -> None:
    writing, release = threading.Event(), threading.Event()
    written: list[list[int]] = []
    order: list[str] = []

    def write(valid: list) -> list[int]:
        values = [c.value for c in valid]
        written.append(values)
        if len(written) == 1:
            writing.set()
            assert release.wait(5)  # the first write is slow: the next takes queue behind it
        return values

    async def send(topic: str, records: list) -> None:
        order.append(f"{topic} {len(records)}")

    coalescing = pipeline.Pipeline(
        name="coalesced",
        parse=_parse,
        write=write,
        outcome=lambda values: pipeline.Outcome(
            str(values), publish={"out.v1": [(None, str(v).encode()) for v in values]}
        ),
        dead_letter_topic="t.dlq.v1",
    )
    takes = [
        [_counted_event(b"1", 0), _counted_event(b"2", 1)],
        [_counted_event(b"3", 2), _counted_event(b"x", 3)],
        [_counted_event(b"4", 4)],
    ]
    stream = _Stream(takes, writing)

    async def releaser() -> None:
        while stream.handed < len(takes):
            await asyncio.sleep(0.001)  # until the two later takes are queued behind the write
        release.set()

    helper = asyncio.ensure_future(releaser())
    await pipeline.run_coalesced(
        stream,  # type: ignore[arg-type]
        coalescing,
        batch_size=10,
        within_s=0.01,
        send=lambda: send,
    )
    await helper
    assert written == [[1, 2], [3, 4]]  # the two takes queued behind the first: one write
    # the dead letter goes before its batch's write; each batch's results after its write
    assert order == ["out.v1 2", "t.dlq.v1 1", "out.v1 2"] or order == [
        "t.dlq.v1 1",
        "out.v1 2",
        "out.v1 2",
    ]
    assert stream.acked == [0, 1, 2, 3, 4]  # in offset order, the dead letter's too


@pytest.mark.anyio
async def test_run_coalesced_stops_on_a_bug_in_the_write() -> None:
    writing = threading.Event()

    def write(_valid: list) -> int:
        writing.set()
        raise RuntimeError("a bug")

    broken = pipeline.Pipeline(
        name="broken",
        parse=_parse,
        write=write,
        outcome=lambda n: pipeline.Outcome(str(n)),
        dead_letter_topic=None,
    )
    stream = _Stream([[_counted_event(b"1", 0)], [_counted_event(b"2", 1)]], writing)

    async def send(_topic: str, _records: list) -> None:
        return None

    with pytest.raises(RuntimeError, match="a bug"):
        await pipeline.run_coalesced(
            stream,  # type: ignore[arg-type]
            broken,
            batch_size=10,
            within_s=0.01,
            send=lambda: send,
        )
    assert stream.acked == []  # never acked: read again after the fix
