"""Prometheus Alertmanager: its generated configuration and its v2 API.

Subscriptions become Alertmanager routes: one receiver per subscription (its webhook, with
``send_resolved``), routed by the alert's ``metric`` label with ``continue: true`` so that
every subscriber of a metric matches. Alertmanager then does what it is built for:
grouping (per metric), deduplication (the agent re-posts a firing alert every minute; a
group that did not change is not notified again before ``repeat_interval``), silences, and
webhook delivery with retries. Alerts without a subscriber go to the ``platform`` receiver
(locally the stack's webhook receiver, which records them; in production none), where the
platform's own Prometheus alerts (issue 18) arrive too.

The configuration is JSON, which is YAML. :func:`sync_alertmanager_config` rewrites it when
the subscriptions changed and asks Alertmanager to reload (``POST /-/reload``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.platform.config import MetricsSettings

log = logging.getLogger(__name__)

ALERT_NAME = "MetricAboveHourAverage"
REPEAT_INTERVAL = "8760h"  # once per firing: a group that did not change is not re-sent


@dataclass(frozen=True)
class Route:
    subscription_id: str
    metric_key: str
    webhook_url: str


def config_path(settings: MetricsSettings) -> Path:
    return settings.state_dir / "alertmanager" / "alertmanager.yml"


def _seconds(value: float) -> str:
    return f"{int(value * 1000)}ms"


def alertmanager_config(settings: MetricsSettings, routes: Sequence[Route]) -> dict[str, Any]:
    """The whole configuration for these subscriptions (a pure function of them)."""
    platform: dict[str, Any] = {"name": "platform"}
    if settings.is_local:
        platform["webhook_configs"] = [
            {"url": f"{settings.webhook_receiver_url}/platform", "send_resolved": True}
        ]
    receivers = [platform]
    children = []
    for route in sorted(routes, key=lambda r: (r.metric_key, r.subscription_id)):
        name = f"sub-{route.subscription_id}"
        receivers.append(
            {"name": name, "webhook_configs": [{"url": route.webhook_url, "send_resolved": True}]}
        )
        children.append(
            {"receiver": name, "matchers": [f'metric="{route.metric_key}"'], "continue": True}
        )
    return {
        "route": {
            "receiver": "platform",
            "group_by": ["alertname", "metric"],
            "group_wait": _seconds(settings.alertmanager_group_wait_s),
            "group_interval": _seconds(settings.alertmanager_group_interval_s),
            "repeat_interval": REPEAT_INTERVAL,
            "routes": children,
        },
        "receivers": receivers,
    }


def render(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


_ROUTES = text(
    """
    SELECT s.id, m.key, s.webhook_url FROM metric_subscriptions s
    JOIN metrics m ON m.id = s.metric_id ORDER BY s.id
    """
)


def current_routes(engine: Engine) -> list[Route]:
    with engine.connect() as conn:
        return [Route(str(r.id), r.key, r.webhook_url) for r in conn.execute(_ROUTES)]


def write_config(settings: MetricsSettings, routes: Sequence[Route]) -> bool:
    """Write the configuration; True when it changed."""
    path = config_path(settings)
    body = render(alertmanager_config(settings, routes))
    if path.exists() and path.read_text() == body:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(body)
    tmp.replace(path)
    return True


def reload(settings: MetricsSettings) -> None:
    response = httpx.post(f"{settings.alertmanager_api}/-/reload", timeout=5.0)
    if response.status_code != 200:
        raise RuntimeError(f"Alertmanager refused its new configuration: {response.text.strip()}")


def sync_alertmanager_config(engine: Engine, settings: MetricsSettings) -> bool:
    """Regenerate the configuration from the subscriptions; reload when it changed. A
    reload that fails (Alertmanager down) is retried by the next call (the sampler calls
    this every minute) because the file is then rewritten only after a success."""
    routes = current_routes(engine)
    path = config_path(settings)
    before = path.read_text() if path.exists() else None
    if not write_config(settings, routes):
        return False
    try:
        reload(settings)
    except (httpx.HTTPError, RuntimeError) as exc:
        log.warning("Alertmanager reload failed (%s); will retry", exc)
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(before)
        return False
    return True


# ---- the v2 API --------------------------------------------------------------------------


class AlertmanagerUnavailable(ConnectionError):
    """Alertmanager did not take the alerts (down, or an error answer); retried."""


def post_alerts(settings: MetricsSettings, alerts: Iterable[dict[str, Any]]) -> None:
    """``POST /api/v2/alerts``; raises :class:`AlertmanagerUnavailable` (an ``OSError``, so
    the stream pipeline retries) when Alertmanager does not accept them."""
    body = list(alerts)
    if not body:
        return
    try:
        response = httpx.post(f"{settings.alertmanager_api}/api/v2/alerts", json=body, timeout=10.0)
    except httpx.HTTPError as exc:
        raise AlertmanagerUnavailable(f"Alertmanager unreachable: {exc}") from exc
    if response.status_code != 200:
        raise AlertmanagerUnavailable(
            f"Alertmanager answered {response.status_code}: {response.text.strip()[:200]}"
        )
