"""Alerts with Alertmanager really running: one webhook per subscriber per episode (one on
firing, one on resolve), idempotent per sample, and nothing lost while Alertmanager is down."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.metrics.alertmanager import sync_alertmanager_config
from core.metrics.alerts import apply_samples
from core.metrics.catalog import metric_by_key
from core.metrics.contracts import MetricSampleV1
from core.metrics.subscriptions import Owner, subscribe
from core.platform.config import Settings
from tests.integration.metrics.conftest import (
    minute_start,
    new_metric,
    notifications,
    store_samples,
    wait_for,
)

pytestmark = pytest.mark.slow


def sample(metric_id: int, key: str, minute, value: float) -> MetricSampleV1:
    return MetricSampleV1(
        metric_id=metric_id, metric_key=key, minute=minute, value=value, sampled_at=minute
    )


def resolved_yet(settings: Settings, path: str) -> list | None:
    got = notifications(settings, path)
    return got if any(n["body"]["status"] == "resolved" for n in got) else None


def test_each_subscriber_gets_one_webhook_on_firing_and_one_on_resolve(
    alerting: Settings, db_engine: Engine
) -> None:
    settings = alerting
    metric_id, key = new_metric(db_engine, min_samples=5)
    paths = [f"/sub-{metric_id}-a", f"/sub-{metric_id}-b"]
    with db_engine.begin() as conn:
        metric = metric_by_key(conn, key)
        assert metric is not None
        for index, path in enumerate(paths):
            subscribe(
                conn,
                Owner("user", f"alert-user-{metric_id}-{index}"),
                metric,
                settings.webhook_receiver_url + path,
                local=True,
            )
    assert sync_alertmanager_config(db_engine, settings)  # routes written, Alertmanager reloaded

    start = minute_start(30)
    history = [(start + timedelta(minutes=i), 100.0) for i in range(10)]
    store_samples(db_engine, metric_id, history)
    # The agent's order: the sampler stored the sample before publishing it.
    spike_minute = start + timedelta(minutes=10)
    store_samples(db_engine, metric_id, [(spike_minute, 400.0)])
    spike = sample(metric_id, key, spike_minute, 400.0)
    first = apply_samples(db_engine, settings, [spike])
    assert (first.judged, first.fired) == (1, 1)
    again = apply_samples(db_engine, settings, [spike])  # a replay: a duplicate, no new episode
    assert (again.judged, again.duplicates, again.fired) == (0, 1, 0)

    for path in paths:
        wait_for(lambda p=path: notifications(settings, p), f"the firing webhook of {path}")

    # Still above the resolve line: the baseline is now (10 x 100 + 400) / 11 = 127.27, its
    # 2x 254.5 < 260. The same episode, re-posted to Alertmanager, not notified again.
    hold = start + timedelta(minutes=11)
    store_samples(db_engine, metric_id, [(hold, 260.0)])
    held = apply_samples(db_engine, settings, [sample(metric_id, key, hold, 260.0)])
    # Re-posted (with every other firing alert of the platform), not fired again.
    assert (held.fired, held.resolved) == (0, 0) and held.posted >= 1
    calm = start + timedelta(minutes=12)
    store_samples(db_engine, metric_id, [(calm, 100.0)])
    assert apply_samples(db_engine, settings, [sample(metric_id, key, calm, 100.0)]).resolved == 1

    for path in paths:
        got = wait_for(lambda p=path: resolved_yet(settings, p), f"the resolve webhook of {path}")
        # Webhooks arrive in order: had a second firing one been sent, it would be here.
        assert [n["body"]["status"] for n in got] == ["firing", "resolved"]
        alert = got[0]["body"]["alerts"][0]
        assert alert["labels"]["metric"] == key
        assert alert["annotations"]["baseline"] == "100"
        assert alert["annotations"]["threshold"] == "300"
        assert got[1]["body"]["alerts"][0]["status"] == "resolved"

    with db_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT state, fired_value, baseline, resolved_value, notified FROM metric_alerts"
                " WHERE metric_id = :i"
            ),
            {"i": metric_id},
        ).all()
    assert [tuple(r) for r in rows] == [("resolved", 400.0, 100.0, 100.0, "resolved")]


def test_alerts_wait_in_the_outbox_while_alertmanager_is_down(
    alerting: Settings, db_engine: Engine
) -> None:
    from core.metrics.alertmanager import AlertmanagerUnavailable

    metric_id, key = new_metric(db_engine, min_samples=3)
    start = minute_start(20)
    store_samples(db_engine, metric_id, [(start + timedelta(minutes=i), 10.0) for i in range(3)])
    spike_minute = start + timedelta(minutes=3)
    store_samples(db_engine, metric_id, [(spike_minute, 31.0)])
    down = alerting.model_copy(update={"alertmanager_url": "http://127.0.0.1:9"})
    with pytest.raises(AlertmanagerUnavailable):
        apply_samples(db_engine, down, [sample(metric_id, key, spike_minute, 31.0)])
    with db_engine.connect() as conn:
        notified = conn.execute(
            text("SELECT notified FROM metric_alerts WHERE metric_id = :i"), {"i": metric_id}
        ).scalar_one()
    assert notified is None  # the episode is recorded, Alertmanager not told yet
    # The pipeline retries the same batch: a duplicate now, and the outbox is posted.
    retried = apply_samples(db_engine, alerting, [sample(metric_id, key, spike_minute, 31.0)])
    assert (retried.duplicates, retried.fired) == (1, 0)
    with db_engine.connect() as conn:
        notified = conn.execute(
            text("SELECT notified FROM metric_alerts WHERE metric_id = :i"), {"i": metric_id}
        ).scalar_one()
    assert notified == "firing"
