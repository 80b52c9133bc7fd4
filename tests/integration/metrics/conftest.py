"""Helpers of the metrics tests: metrics and samples with known figures, the webhook
receiver's records, a bounded readiness poll (the ``alerting`` fixture is in tests/conftest.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.metrics.partitions import ensure_day_partitions
from core.platform.config import Settings


def new_metric(
    engine: Engine, *, min_samples: int = 5, game_id: str | None = None, **rule: Any
) -> tuple[int, str]:
    """A metric of its own (kind ``test``), so tests never share an episode."""
    key = f"test.metric/{uuid.uuid4().hex[:12]}"
    columns = {"min_samples": min_samples, **rule}
    names = ", ".join(columns)
    values = ", ".join(f":{c}" for c in columns)
    with engine.begin() as conn:
        metric_id = conn.execute(
            text(
                f"INSERT INTO metrics (key, kind, description, unit, source, game_id, {names})"
                f" VALUES (:key, 'test', 'a test metric', 'things', 'tests', :game, {values})"
                " RETURNING id"
            ),
            {"key": key, "game": game_id, **columns},
        ).scalar_one()
    return metric_id, key


def minute_start(minutes_ago: int) -> datetime:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=minutes_ago)


def store_samples(engine: Engine, metric_id: int, points: Iterable[tuple[datetime, float]]) -> None:
    points = list(points)
    with engine.begin() as conn:
        ensure_day_partitions(conn, {m.date() for m, _ in points})
        for minute, value in points:
            conn.execute(
                text(
                    "INSERT INTO metric_samples (metric_id, minute, value) VALUES (:i, :m, :v)"
                    " ON CONFLICT DO NOTHING"
                ),
                {"i": metric_id, "m": minute, "v": value},
            )


def notifications(settings: Settings, path: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{settings.webhook_receiver_url}/notifications", params={"path": path}, timeout=5
    )
    response.raise_for_status()
    return response.json()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll ``condition`` until it returns something truthy (a readiness check, bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
