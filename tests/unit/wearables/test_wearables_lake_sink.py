"""The lake sink agents in Faust's test context (no broker): decode, append, retry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.lake.bronze import BRONZE_WEARABLE_SAMPLES, append_bronze
from core.wearables.contracts import Metric, WearableSample, WearableSource


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    from core.platform.config import get_settings

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


@dataclass
class Captured:
    """Where the sink's appends and dead letters went instead (see ``captured``)."""

    lake: str
    appended: list[int] = field(default_factory=list)  # rows per Delta commit
    dead_letters: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)


@pytest.fixture
def captured(sink, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Captured:  # type: ignore[no-untyped-def]
    """The agents append to a lake under ``tmp_path`` and dead-letter into a list."""
    out = Captured(lake=str(tmp_path / "lake"))

    async def send(topic: str, records) -> None:  # type: ignore[no-untyped-def]
        out.dead_letters.extend((topic, key, value) for key, value in records)

    def append(_root: str, table: str, rows) -> None:  # type: ignore[no-untyped-def]
        append_bronze(out.lake, table, rows)
        out.appended.append(rows.num_rows)

    monkeypatch.setattr(sink, "append_bronze", append)
    monkeypatch.setattr(sink, "send_dead_letters", send)
    return out


async def until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    import anyio

    # A readiness wait, not a timing: the first Delta append imports and plans (slow when loaded).
    with anyio.fail_after(60):
        while not condition():
            await anyio.sleep(0.02)  # the agent runs on the same loop


async def garbage_then_one(captured: Captured, agent, garbage: bytes, valid: bytes, table: str):  # type: ignore[no-untyped-def]
    """Put a message that does not validate and a valid one to the agent (keyed ``ana``);
    the bronze rows of ``table`` once the valid one was appended."""
    from deltalake import DeltaTable

    async with agent.test_context() as running:
        await running.put(garbage, key=b"ana")
        await running.put(valid, key=b"ana")
        await until(lambda: sum(captured.appended) == 1, "one appended row")
    return DeltaTable(f"{captured.lake}/{table}").to_pyarrow_table().to_pylist()


@pytest.mark.anyio
async def test_samples_are_appended_to_bronze_and_garbage_is_dead_lettered(
    sink, captured: Captured
) -> None:
    from core.platform.messages import DeadLetter

    valid = steps(1).model_dump_json().encode()
    rows = await garbage_then_one(
        captured, sink.sink_wearable_samples, b"{not json", valid, BRONZE_WEARABLE_SAMPLES
    )
    assert [(r["user_id"], r["source"], r["value"]) for r in rows] == [("ana", "oura", 12.0)]
    assert rows[0]["sample_id"] == str(steps(1).sample_id)
    ((topic, key, value),) = captured.dead_letters
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


@pytest.mark.anyio
async def test_game_events_are_appended_as_they_were_and_garbage_is_skipped(
    sink, captured: Captured
) -> None:
    from core.events.contracts import GameEvent
    from core.lake.bronze import BRONZE_GAME_EVENTS

    win = GameEvent.model_validate(
        {
            "event_id": "00000000-0000-4000-8000-000000000001",
            "game_id": "tri",
            "player_id": "ana",
            "type": "match_result",
            "payload": {"outcome": "win", "score": 12},
            "occurred_at": "2026-11-21T23:30:00-08:00",
            "received_at": "2026-11-22T07:31:00Z",
        }
    )
    (row,) = await garbage_then_one(
        captured,
        sink.sink_game_events,
        b'{"type": "match_result"}',
        win.model_dump_json().encode(),
        BRONZE_GAME_EVENTS,
    )
    assert (row["event_id"], row["player_id"], row["match_outcome"], row["score"]) == (
        "00000000-0000-4000-8000-000000000001",
        "ana",
        "win",
        12,
    )
    assert "tokens_minted" not in row  # what it earns is a reward command's fact
    assert row["occurred_at"] == datetime(2026, 11, 22, 7, 30, tzinfo=UTC)
    assert row["date"] == date(2026, 11, 22)
    assert row["payload"] == '{"outcome":"win","score":12,"opponent":null,"match_id":null}'
    assert captured.dead_letters == []  # the scoring agent dead-letters invalid game events


@pytest.mark.anyio
async def test_reward_commands_are_appended_as_issued_and_garbage_is_skipped_with_a_warning(
    sink, captured: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    import uuid

    from core.lake.bronze import BRONZE_REWARD_COMMANDS
    from core.rewards.commands import RewardAction, RewardCommand

    burn = RewardCommand(
        command_id=uuid.UUID("00000000-0000-5000-8000-000000000002"),
        action=RewardAction.burn,
        game_id="tri",
        player_id="ana",
        token="STRIDE",
        amount=Decimal("0.000000000000000001"),
        reason="purchase:sword",
        source_event_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
        issued_at=datetime(2026, 11, 21, 23, 59, 59, tzinfo=UTC),
    )
    with caplog.at_level("WARNING", logger="streams.pipeline"):
        (row,) = await garbage_then_one(
            captured,
            sink.sink_reward_commands,
            b'{"action": "mint"}',
            burn.model_dump_json().encode(),
            BRONZE_REWARD_COMMANDS,
        )
    assert (row["command_id"], row["action"], row["amount"], row["date"]) == (
        str(burn.command_id),
        "burn",
        Decimal("0.000000000000000001"),
        date(2026, 11, 21),
    )
    assert (row["game_id"], row["source_event_id"]) == ("tri", str(burn.source_event_id))
    assert captured.dead_letters == []  # rewards.commands.v1 has no dead-letter topic
    assert "sink bronze/reward_commands: skipped 1 invalid messages" in caplog.text
