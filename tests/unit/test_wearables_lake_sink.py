"""The lake sink agents in Faust's test context (no broker): decode, append, retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.lake import BRONZE_WEARABLE_SAMPLES, append_bronze
from core.wearables.contracts import Metric, WearableSample, WearableSource


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    from core.config import get_settings

    monkeypatch.setenv("STRIDE_STATE_DIR", str(tmp_path))
    get_settings.cache_clear()
    from streams.agents import lake_sink

    yield lake_sink
    get_settings.cache_clear()


def steps(minute: int) -> WearableSample:
    start = datetime(2026, 11, 21, 8, minute, tzinfo=UTC)
    return WearableSample.of(
        user_id="ana",
        source=WearableSource.oura,
        metric=Metric.steps,
        value=12,
        unit="count",
        start=start,
        end=start + timedelta(minutes=1),
    )


async def until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    import anyio

    with anyio.fail_after(10):
        while not condition():
            await anyio.sleep(0.02)  # the agent runs on the same loop


@pytest.mark.anyio
async def test_samples_are_appended_to_bronze_and_garbage_is_dead_lettered(
    sink, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from deltalake import DeltaTable

    from core.events import DeadLetter

    lake = str(tmp_path / "lake")
    appended: list[int] = []
    dead_letters: list[tuple[str, bytes | None, bytes]] = []

    async def send(topic: str, records) -> None:  # type: ignore[no-untyped-def]
        dead_letters.extend((topic, key, value) for key, value in records)

    def append(_root: str, table: str, rows) -> None:  # type: ignore[no-untyped-def]
        append_bronze(lake, table, rows)
        appended.append(rows.num_rows)

    monkeypatch.setattr(sink, "append_bronze", append)
    monkeypatch.setattr(sink, "send_dead_letters", send)
    async with sink.sink_wearable_samples.test_context() as agent:
        await agent.put(b"{not json", key=b"ana")
        await agent.put(steps(1).model_dump_json().encode(), key=b"ana")
        await until(lambda: sum(appended) == 1, "one appended row")
    rows = DeltaTable(f"{lake}/{BRONZE_WEARABLE_SAMPLES}").to_pyarrow_table().to_pylist()
    assert [(r["user_id"], r["source"], r["value"]) for r in rows] == [("ana", "oura", 12.0)]
    assert rows[0]["sample_id"] == str(steps(1).sample_id)
    ((topic, key, value),) = dead_letters
    letter = DeadLetter.model_validate_json(value)
    assert (topic, key) == ("wearable.samples.dlq.v1", b"ana")
    assert letter.original_value() == b"{not json"
    assert "JSON" in letter.reason


@pytest.mark.anyio
async def test_a_failed_delta_commit_is_retried_not_skipped(
    sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []

    def flaky(_root: str, _table: str, rows) -> None:  # type: ignore[no-untyped-def]
        attempts.append(rows.num_rows)
        if len(attempts) == 1:
            raise OSError("lake unavailable")

    monkeypatch.setattr(sink, "append_bronze", flaky)
    async with sink.sink_wearable_samples.test_context() as agent:
        await agent.put(steps(2).model_dump_json().encode(), key=b"ana")
        await until(lambda: len(attempts) == 2, "a retry")
    assert attempts == [1, 1]
