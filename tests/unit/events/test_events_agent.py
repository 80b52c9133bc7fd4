"""The scoring agent in Faust's test context (no broker, no database): invalid messages are
dead-lettered with their bytes, valid ones are written, then their reward commands sent."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.events.contracts import GameEvent, MatchResult
from core.platform.messages import DeadLetter
from core.rewards.commands import RewardAction, RewardCommand


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def agent_module(monkeypatch: pytest.MonkeyPatch, tmp_path):
    from core.platform.config import get_settings

    monkeypatch.setenv("STRIDE_STATE_DIR", str(tmp_path))
    get_settings.cache_clear()
    from streams.agents import scoring

    yield scoring
    get_settings.cache_clear()


def win(player: str) -> GameEvent:
    return GameEvent(
        event_id=uuid.uuid4(),
        game_id="tri",
        player_id=player,
        type="match_result",
        payload=MatchResult(outcome="win", score=9),
        occurred_at=datetime.now(UTC),
    )


async def until(condition, what: str) -> None:
    import anyio

    with anyio.fail_after(10):
        while not condition():
            await anyio.sleep(0.02)  # the agent runs on the same loop


@pytest.mark.anyio
async def test_invalid_messages_go_to_the_dlq_with_reason_and_bytes(
    agent_module, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list = []
    written: list = []

    async def send_all(topic, records) -> None:
        sent.append((topic, records))

    def apply_batch(_engine, valid, _rules):
        written.extend(valid)
        return agent_module.BatchOutcome(len(valid), 0, [])

    monkeypatch.setattr(agent_module, "_send_all", send_all)
    monkeypatch.setattr(agent_module, "apply_batch", apply_batch)
    async with agent_module.score_events.test_context() as agent:
        await agent.put(b"\xffnot json", key=b"p1")
        await until(lambda: sent, "a dead letter")
    [(topic, [(key, value)])] = sent
    letter = DeadLetter.model_validate_json(value)
    assert (topic, key) == ("game.events.dlq.v1", b"p1")
    assert letter.original_value() == b"\xffnot json"
    assert letter.reason.startswith("event: Invalid JSON")
    assert written == []


@pytest.mark.anyio
async def test_reward_commands_are_published_after_the_batch_is_written(
    agent_module, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    event = win("p7")
    command = RewardCommand(
        command_id=uuid.uuid4(),
        action=RewardAction.mint,
        game_id="tri",
        player_id="p7",
        token="STRIDE",
        amount=Decimal(10),
        reason="match_won",
        source_event_id=event.event_id,
        issued_at=datetime.now(UTC),
    )

    async def send_all(topic, records) -> None:
        order.append(f"send {topic} {len(records)}")

    def apply_batch(_engine, valid, _rules):
        assert [c.value for c in valid] == [event]
        order.append("write")
        return agent_module.BatchOutcome(1, 0, [command])

    monkeypatch.setattr(agent_module, "_send_all", send_all)
    monkeypatch.setattr(agent_module, "apply_batch", apply_batch)
    async with agent_module.score_events.test_context() as agent:
        await agent.put(event.model_dump_json().encode(), key=b"p7")
        await until(lambda: len(order) == 2, "the write and the publish")
    assert order == ["write", "send rewards.commands.v1 1"]
