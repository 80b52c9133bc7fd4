"""Done means, end to end on the stack `stride up` runs: a user subscribes a webhook to a
metric through the API (behind nginx), the metric spikes past 3x its last-hour average, the
sample goes through Kafka to the metric alerts agent of the real Faust worker, Alertmanager
delivers exactly one webhook; the metric calms down, exactly one more."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.engine import Engine

from core.identity.app_users import create_app_user
from core.metrics.contracts import MetricSampleV1
from core.metrics.sampler import kafka_publisher
from core.platform.config import Settings
from core.platform.db import session_scope
from tests.integration.metrics.conftest import (
    minute_start,
    new_metric,
    notifications,
    store_samples,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_one_webhook_when_it_spikes_and_one_when_it_calms_down(
    live_api: str, lake_worker: Settings, alerting: Settings, db_engine: Engine
) -> None:
    settings = alerting
    with session_scope() as session:
        token = create_app_user(session, f"flow-{uuid.uuid4().hex[:8]}").token
    metric_id, key = new_metric(db_engine, min_samples=10)
    path = f"/flow-{uuid.uuid4().hex[:8]}"
    subscribed = httpx.post(
        f"{live_api}/v1/metrics/subscriptions",
        json={"metric": key, "webhook_url": settings.webhook_receiver_url + path},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert subscribed.status_code == 201, subscribed.text

    start = minute_start(40)
    store_samples(db_engine, metric_id, [(start + timedelta(minutes=i), 100.0) for i in range(30)])
    publish, close = kafka_publisher(settings)

    def sample(minutes: int, value: float) -> MetricSampleV1:
        minute = start + timedelta(minutes=minutes)
        store_samples(db_engine, metric_id, [(minute, value)])  # the sampler stores, then publishes
        return MetricSampleV1(
            metric_id=metric_id,
            metric_key=key,
            minute=minute,
            value=value,
            sampled_at=datetime.now(UTC),
        )

    try:
        spike = sample(30, 301.0)  # above 3 x 100
        publish([spike, spike])  # a duplicate on the wire changes nothing
        wait_for(lambda: notifications(settings, path), "the firing webhook", timeout=60)
        publish([sample(31, 120.0)])  # calm: below 2 x the baseline
        got = wait_for(
            lambda: (lambda n: n if len(n) >= 2 else None)(notifications(settings, path)),
            "the resolve webhook",
            timeout=60,
        )
    finally:
        close()
    assert [n["body"]["status"] for n in got] == ["firing", "resolved"]
    assert got[0]["body"]["alerts"][0]["labels"]["metric"] == key
    alerts = httpx.get(
        f"{live_api}/v1/metrics/alerts",
        params={"state": "all", "metric": key},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    assert [(a["state"], a["fired_value"], a["notified"]) for a in alerts] == [
        ("resolved", 301.0, "resolved")
    ]
