"""``/v1/metrics`` against PostgreSQL: the 24 h series and the ranking agree with figures
PostgreSQL computes on its own; who may see and subscribe to what; the one error shape."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.main import create_app
from api.routes.metrics import SeriesPublic
from core.identity.app_users import create_app_user
from core.identity.game_keys import create_game
from core.metrics.partitions import rollup_hour
from core.platform.db import session_scope
from tests.integration.metrics.conftest import minute_start, new_metric, store_samples

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(db_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


@pytest.fixture(scope="module")
def user() -> dict[str, str]:
    with session_scope() as session:
        token = create_app_user(session, f"metrics-viewer-{uuid.uuid4().hex[:8]}")
    return {"Authorization": f"Bearer {token.token}"}


def test_every_metrics_path_needs_a_caller(client: TestClient) -> None:
    for path in (
        "/v1/metrics",
        "/v1/metrics/ranking",
        "/v1/metrics/alerts",
        "/v1/metrics/series?metric=x",
    ):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.json()["code"] == "unauthorized"


def test_the_series_matches_postgresql_minute_by_minute(
    client: TestClient, user: dict[str, str], db_engine: Engine
) -> None:
    metric_id, key = new_metric(db_engine, min_samples=10, window_minutes=60)
    rng = random.Random(17)
    # 26 hours of minutes with every 7th one missing (gaps), the latest minute excluded.
    points = [
        (minute_start(m), float(rng.randint(50, 150))) for m in range(26 * 60, 0, -1) if m % 7
    ]
    store_samples(db_engine, metric_id, points)

    response = client.get("/v1/metrics/series", params={"metric": key}, headers=user)
    assert response.status_code == 200, response.text
    body = response.json()
    SeriesPublic.model_validate(body)  # the answer is sent as cached bytes: check its shape
    got = body["points"]
    with db_engine.connect() as conn:
        expected = conn.execute(
            text(
                """
                SELECT s.minute, s.value, w.n, w.mean
                FROM metric_samples s CROSS JOIN LATERAL (
                    SELECT count(*) AS n, avg(value) AS mean FROM metric_samples w
                    WHERE w.metric_id = s.metric_id
                      AND w.minute >= s.minute - interval '60 minutes' AND w.minute < s.minute
                ) w
                WHERE s.metric_id = :i AND s.minute >= CAST(:start AS timestamptz)
                  AND s.minute < CAST(:end AS timestamptz)
                ORDER BY s.minute
                """
            ),
            {"i": metric_id, "start": body["start"], "end": body["end"]},
        ).all()
    assert len(got) == len(expected) > 1200  # 24 h of minutes less the gaps
    for point, row in zip(got, expected, strict=True):
        assert point["minute"].replace("Z", "+00:00") == row.minute.isoformat()
        assert point["value"] == row.value
        baseline = float(row.mean) if row.n >= 10 else None
        assert point["baseline"] == pytest.approx(baseline)
        assert point["threshold"] == pytest.approx(None if baseline is None else 3 * baseline)

    hourly = client.get(
        "/v1/metrics/series", params={"metric": key, "step": 60}, headers=user
    ).json()["points"]
    with db_engine.connect() as conn:
        buckets = conn.execute(
            text(
                "SELECT date_bin('60 minutes', minute, CAST(:start AS timestamptz)) AS b,"
                " avg(value), min(value), max(value), count(*) FROM metric_samples"
                " WHERE metric_id = :i"
                " AND minute >= CAST(:start AS timestamptz) AND minute < CAST(:end AS timestamptz)"
                " GROUP BY b ORDER BY b"
            ),
            {"i": metric_id, "start": body["start"], "end": body["end"]},
        ).all()
    assert [(p["value"], p["min"], p["max"], p["count"]) for p in hourly] == [
        (pytest.approx(float(b[1])), b[2], b[3], b[4]) for b in buckets
    ]
    # A bucket's baseline: the mean of its minutes' baselines (those judged).
    judged: dict[str, list[float]] = {}
    for point, bucket_start in zip(got, [b for b in buckets for _ in range(b[4])], strict=True):
        if point["baseline"] is not None:
            judged.setdefault(bucket_start[0].isoformat(), []).append(point["baseline"])
    assert [(p["minute"].replace("Z", "+00:00"), p["baseline"]) for p in hourly] == [
        (
            b[0].isoformat(),
            pytest.approx(math.fsum(v) / len(v)) if (v := judged.get(b[0].isoformat())) else None,
        )
        for b in buckets
    ]


def test_the_ranking_matches_postgresql_and_cv_is_the_default(
    client: TestClient, user: dict[str, str], db_engine: Engine
) -> None:
    # A large calm metric and a small jumpy one: std dev ranks the large one first, CV the
    # small one (the reason CV is the default).
    big_id, big = new_metric(db_engine)
    small_id, small = new_metric(db_engine)
    store_samples(
        db_engine, big_id, [(minute_start(m), 10_000.0 + (m % 5) * 50) for m in range(1, 121)]
    )
    store_samples(
        db_engine, small_id, [(minute_start(m), 1.0 + (m % 2) * 9) for m in range(1, 121)]
    )

    # Rolled up as the sampler and the hourly job keep them (the samples above were
    # inserted directly): the ranking reads these hours from the rollups.
    now_hour = minute_start(0).replace(minute=0)
    with db_engine.begin() as conn:
        for back in (0, 1, 2, 3):
            rollup_hour(conn, now_hour - timedelta(hours=back))

    ranking = client.get("/v1/metrics/ranking", params={"limit": 1000}, headers=user).json()
    assert ranking["by"] == "cv"
    start = datetime.fromisoformat(ranking["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(ranking["end"].replace("Z", "+00:00"))
    assert start.minute == 0 and timedelta(hours=24) <= end - start < timedelta(hours=25)
    keys = [m["key"] for m in ranking["metrics"]]
    assert keys.index(small) < keys.index(big)
    by_sd = client.get(
        "/v1/metrics/ranking", params={"by": "stddev", "limit": 1000}, headers=user
    ).json()
    sd_keys = [m["key"] for m in by_sd["metrics"]]
    assert sd_keys.index(big) < sd_keys.index(small)

    with db_engine.connect() as conn:
        expected = {
            r.key: r
            for r in conn.execute(
                text(
                    "SELECT m.key, count(*) AS n, avg(s.value) AS mean, stddev_samp(s.value) AS sd"
                    " FROM metric_samples s JOIN metrics m ON m.id = s.metric_id"
                    " WHERE m.id = ANY(:ids) AND s.minute >= CAST(:start AS timestamptz)"
                    " AND s.minute < CAST(:end AS timestamptz) GROUP BY m.key"
                ),
                {"ids": [big_id, small_id], "start": ranking["start"], "end": ranking["end"]},
            )
        }
    for entry in ranking["metrics"]:
        if entry["key"] in expected:
            row = expected[entry["key"]]
            assert entry["count"] == row.n
            assert entry["mean"] == pytest.approx(float(row.mean))
            assert entry["stddev"] == pytest.approx(row.sd)
            assert entry["cv"] == pytest.approx(row.sd / abs(float(row.mean)))
    assert math.isclose(
        next(m["cv"] for m in ranking["metrics"] if m["key"] == small),
        expected[small].sd / float(expected[small].mean),
    )


def test_subscriptions_crud_validation_and_who_may_subscribe(
    client: TestClient, user: dict[str, str], db_engine: Engine
) -> None:
    with session_scope() as session:
        game_key = create_game(session, f"sub-{uuid.uuid4().hex[:8]}")
    game_headers = {"X-Api-Key": game_key.api_key}
    _, platform_metric = new_metric(db_engine)
    _, other_game_metric = new_metric(db_engine, game_id="some-other-game")
    url = "http://127.0.0.1:9/hook"

    made = client.post(
        "/v1/metrics/subscriptions",
        json={"metric": platform_metric, "webhook_url": url},
        headers=user,
    )
    assert made.status_code == 201, made.text
    again = client.post(
        "/v1/metrics/subscriptions",
        json={"metric": platform_metric, "webhook_url": url},
        headers=user,
    )
    assert again.status_code == 200 and again.json()["id"] == made.json()["id"]  # idempotent
    mine = client.get("/v1/metrics/subscriptions", headers=user).json()
    assert [s["id"] for s in mine] == [made.json()["id"]]

    for bad, why in [
        ("ftp://example.com/x", "must start with"),
        ("https://user:secret@example.com/x", "credentials"),
        ("https:///nohost", "host"),
    ]:
        refused = client.post(
            "/v1/metrics/subscriptions",
            json={"metric": platform_metric, "webhook_url": bad},
            headers=user,
        )
        assert refused.status_code == 422 and why in refused.json()["detail"], bad
        assert refused.json()["code"] == "invalid"

    # A game server sees no other game's metric, and may not subscribe to it.
    hidden = client.post(
        "/v1/metrics/subscriptions",
        json={"metric": other_game_metric, "webhook_url": url},
        headers=game_headers,
    )
    assert hidden.status_code == 404
    assert other_game_metric not in [
        m["key"] for m in client.get("/v1/metrics", headers=game_headers).json()
    ]
    # Another caller cannot delete the user's subscription; the user can, once.
    sub_id = made.json()["id"]
    assert (
        client.delete(f"/v1/metrics/subscriptions/{sub_id}", headers=game_headers).status_code
        == 404
    )
    assert client.delete(f"/v1/metrics/subscriptions/{sub_id}", headers=user).status_code == 204
    assert client.delete(f"/v1/metrics/subscriptions/{sub_id}", headers=user).status_code == 404
    with db_engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM metric_subscriptions WHERE id = :i"), {"i": sub_id}
            ).scalar_one()
            == 0
        )


def test_unknown_metric_and_bad_query_are_4xx_in_the_error_shape(
    client: TestClient, user: dict[str, str]
) -> None:
    missing = client.get("/v1/metrics/series", params={"metric": "no.such/metric"}, headers=user)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    bad = client.get("/v1/metrics/series", params={"metric": "x", "step": 0}, headers=user)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "step"
    assert client.get("/v1/metrics/ranking", params={"by": "mean"}, headers=user).status_code == 422


def test_a_metric_looked_up_in_vain_is_served_once_it_exists(
    client: TestClient, user: dict[str, str], db_engine: Engine
) -> None:
    # The series caches the metrics it found, not a miss: a metric added after a 404 is
    # served at once (within the same minute, so the series key is the same too).
    key = f"test.metric/late-{uuid.uuid4().hex[:8]}"
    before = client.get("/v1/metrics/series", params={"metric": key}, headers=user)
    assert before.status_code == 404
    with db_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO metrics (key, kind, description, unit, source)"
                " VALUES (:key, 'test', 'a late metric', 'things', 'tests')"
            ),
            {"key": key},
        )
    after = client.get("/v1/metrics/series", params={"metric": key}, headers=user)
    assert after.status_code == 200, after.text
    assert after.json()["metric"]["key"] == key and after.json()["points"] == []


def test_a_viewer_holding_the_current_series_gets_a_304(
    client: TestClient, user: dict[str, str], db_engine: Engine
) -> None:
    metric_id, key = new_metric(db_engine)
    store_samples(db_engine, metric_id, [(minute_start(m), float(m)) for m in range(30, 0, -1)])
    first = client.get("/v1/metrics/series", params={"metric": key}, headers=user)
    assert first.status_code == 200, first.text
    tag = first.headers["etag"]
    assert tag.startswith('"') and first.headers["cache-control"] == "private, no-cache"

    again = client.get(
        "/v1/metrics/series", params={"metric": key}, headers={**user, "If-None-Match": tag}
    )
    if again.status_code == 200:  # the minute turned between the two reads: a new series
        assert again.headers["etag"] != tag
        return
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == tag
    other = client.get(
        "/v1/metrics/series",
        params={"metric": key, "step": 5},  # another answer: its own tag, sent in full
        headers={**user, "If-None-Match": f'W/"x", {tag}'},
    )
    assert other.status_code == 200 and other.headers["etag"] != tag
    assert other.json()["step_minutes"] == 5
