"""The metric alerts agent in Faust's test context (no broker, no database): a sample that
breaks the contract is dead-lettered with its reason; valid ones reach the domain write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.metrics.alerts import AlertBatchOutcome
from core.metrics.contracts import MetricSampleV1
from core.platform.messages import DeadLetter


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def agent_module(monkeypatch: pytest.MonkeyPatch, tmp_path):
    from core.platform.config import get_settings

    monkeypatch.setenv("STRIDE_STATE_DIR", str(tmp_path))
    get_settings.cache_clear()
    from streams.agents import metric_alerts

    yield metric_alerts
    get_settings.cache_clear()


async def until(condition, what: str) -> None:
    import anyio

    with anyio.fail_after(10):
        while not condition():
            await anyio.sleep(0.02)  # the agent runs on the same loop


@pytest.mark.anyio
async def test_bad_samples_are_dead_lettered_and_good_ones_judged(
    agent_module, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list = []
    judged: list = []

    async def send_all(topic, records) -> None:
        sent.append((topic, records))

    def apply_samples(_engine, _settings, samples):
        judged.extend(samples)
        return AlertBatchOutcome(len(samples), 0, 0, 0, 0)

    monkeypatch.setattr(agent_module, "_send_all", send_all)
    monkeypatch.setattr(agent_module, "apply_samples", apply_samples)
    minute = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    good = MetricSampleV1(
        metric_id=1, metric_key="game.events/tri", minute=minute, value=5, sampled_at=minute
    )
    off_minute = good.model_dump(mode="json") | {"minute": "2026-12-01T12:00:30Z"}
    async with agent_module.judge_metric_samples.test_context() as agent:
        import json

        await agent.put(json.dumps(off_minute).encode(), key=b"game.events/tri")
        await agent.put(good.model_dump_json().encode(), key=b"game.events/tri")
        await until(lambda: sent and judged, "a dead letter and a judged sample")
    [(topic, [(key, value)])] = sent
    assert (topic, key) == ("metrics.samples.dlq.v1", b"game.events/tri")
    assert "whole minute" in DeadLetter.model_validate_json(value).reason
    assert judged == [good]
