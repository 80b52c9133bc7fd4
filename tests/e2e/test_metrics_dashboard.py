"""The metrics dashboard in a real browser (Debian chromium driven by Playwright) against the
API that `stride up` runs, behind nginx: sign in with an app token, pick a metric, see its
24 h chart with the 1-hour average and the 3x line, the ranking and the active alert, and
subscribe a webhook."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from playwright.sync_api import Browser
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.identity.app_users import create_app_user
from core.metrics.alerts import judge_batch
from core.metrics.contracts import MetricSampleV1
from core.platform.db import session_scope
from tests.e2e.conftest import SCREENSHOTS
from tests.integration.metrics.conftest import minute_start, new_metric, store_samples

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def spiking_metric(engine: Engine) -> str:
    """24 h of a daily wave around 100 with a gap, then a spike to 420 that fires."""
    metric_id, key = new_metric(engine, min_samples=30)
    points = [
        (minute_start(m), 100.0 + 30.0 * ((m // 60) % 6) / 5 + (m % 9))
        for m in range(24 * 60, 1, -1)
        if not 300 <= m < 330  # half an hour the sampler missed: a gap in the chart
    ]
    spike = (minute_start(1), 420.0)
    store_samples(engine, metric_id, [*points, spike])
    with engine.begin() as conn:
        judge_batch(
            conn,
            [
                MetricSampleV1(
                    metric_id=metric_id,
                    metric_key=key,
                    minute=spike[0],
                    value=spike[1],
                    sampled_at=spike[0] + timedelta(seconds=10),
                )
            ],
        )
    return key


def calm_metric(engine: Engine) -> str:
    metric_id, key = new_metric(engine)
    store_samples(engine, metric_id, [(minute_start(m), 50.0 + m % 3) for m in range(600, 0, -1)])
    return key


def test_a_user_picks_a_metric_sees_its_day_its_rank_its_alert_and_subscribes(
    browser: Browser, live_api: str, db_engine: Engine
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with session_scope() as session:
        token = create_app_user(session, f"dash-{uuid.uuid4().hex[:8]}").token
    spiking = spiking_metric(db_engine)
    calm = calm_metric(db_engine)

    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_api}/metrics/dashboard")
    assert "Type an app token" in page.locator("#status").inner_text()
    page.fill("#token", token)
    page.click("#sign-in")
    page.wait_for_selector("body[data-loaded]")

    # The active alert and the ranking are there before any metric is picked.
    assert spiking in page.locator("#alerts tbody").inner_text()
    ranking = page.locator("#ranking tbody tr td:nth-child(2)").all_inner_texts()
    assert spiking in ranking and calm in ranking

    page.fill("#filter", spiking.split("/")[1])
    page.check(f"#metric-list input[value='{spiking}']")
    chart = page.locator(f"article.chart[data-metric='{spiking}']")
    chart.locator("canvas").wait_for()
    legend = chart.locator(".u-legend").inner_text()
    assert "60 min average" in legend and "3\u00d7 line" in legend
    assert "firing" in (chart.get_attribute("class") or "")
    rank = ranking.index(spiking) + 1
    assert chart.locator(".rank").inner_text().startswith(f"Volatility rank #{rank} (CV ")
    page.fill("#filter", calm.split("/")[1])
    page.check(f"#metric-list input[value='{calm}']")
    page.locator(f"article.chart[data-metric='{calm}'] canvas").wait_for()
    page.fill("#filter", "")
    assert page.url.count("metric=") == 2  # the picks are in the URL (shareable, reloadable)
    page.screenshot(path=str(SCREENSHOTS / "metrics-dashboard.png"), full_page=True)

    # Subscribe from the chart; a URL with credentials is refused with the API's reason.
    form = chart.locator("form.subscribe")
    form.locator("input").fill("https://user:pw@hooks.example.com/x")
    form.locator("button").click()
    chart.locator(".subscribe-result.error").wait_for()
    assert "credentials" in chart.locator(".subscribe-result").inner_text()
    form.locator("input").fill(f"http://127.0.0.1:9/hook/{uuid.uuid4().hex[:6]}")
    form.locator("button").click()
    page.wait_for_function(
        "el => el.textContent.startsWith('Subscribed')",
        arg=chart.locator(".subscribe-result").element_handle(),
    )
    page.screenshot(path=str(SCREENSHOTS / "metrics-dashboard-subscribed.png"), full_page=True)
    with db_engine.connect() as conn:
        subscribed = conn.execute(
            text(
                "SELECT count(*) FROM metric_subscriptions s JOIN metrics m ON m.id = s.metric_id"
                " WHERE m.key = :k"
            ),
            {"k": spiking},
        ).scalar_one()
    assert subscribed == 1
    context.close()
