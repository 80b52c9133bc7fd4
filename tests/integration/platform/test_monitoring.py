"""Monitoring on the real services: Prometheus scrapes the exporters on loopback, evaluates
the platform's alert rules, sees a consumer group's lag; one event's request id is followed
from the API's log to the worker's; `stride status` shows lag and errors."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata
from typer.testing import CliRunner

from cli.main import app
from cli.monitoring import RULES
from cli.services import SERVICES
from cli.stack import Stack
from core.platform.topics import DEAD_LETTER_TOPICS
from tests.streaming_helpers import (  # noqa: F401 - fixtures
    GameWithKey,
    api_fixture,
    game_fixture,
    post_batch,
    score_event,
    wait_for,
    worker_fixture,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def prometheus(stack: Stack, db_engine, kafka) -> str:
    """Prometheus and the exporters as `stride up` runs them, scraping every second."""
    fast = stack.settings.model_copy(update={"scrape_interval_s": 1})
    Stack(fast, SERVICES).up(
        ["exporter", "postgres-exporter", "prometheus"], report=lambda _m: None
    )
    return fast.prometheus_url


def query(prometheus: str, expr: str) -> list[dict]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    return response.json()["data"]["result"]


def test_prometheus_sees_a_groups_lag_per_partition(prometheus: str, stack: Stack) -> None:
    bootstrap = stack.settings.kafka_bootstrap
    topic, group = f"monitoring.test.{uuid.uuid4().hex[:8]}", f"lag-test-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for _ in range(5):
        producer.send(topic, value=b"x", partition=0)
    producer.send(topic, value=b"y", partition=1)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(2, "", -1)})
    consumer.close()

    def lag() -> dict[str, float] | None:
        rows = query(prometheus, f'stride_kafka_consumer_lag{{group="{group}"}}')
        return {r["metric"]["partition"]: float(r["value"][1]) for r in rows} or None

    # Partition 1 has no committed offset: the group never read it, it is not "behind".
    assert wait_for("the lag in Prometheus", lag, timeout=30) == {"0": 3.0}
    dead = query(prometheus, "stride_kafka_dead_letter_records")
    assert {r["metric"]["topic"] for r in dead} == set(DEAD_LETTER_TOPICS)
    assert wait_for("pg_up", lambda: query(prometheus, "pg_up == 1"), timeout=30)
    assert query(prometheus, 'stride_exporter_source_up{source="postgres"} == 1')
    assert query(prometheus, "stride_reward_commands_pending >= 0")


def test_prometheus_sees_each_chains_indexer_lag(prometheus: str, db_engine) -> None:
    """The exporter reads chain_cursors (the indexer's own record): head, indexed block,
    lag and a failed last step per chain reach Prometheus."""
    from sqlalchemy import text

    chain_id = 900_000 + uuid.uuid4().int % 99_999
    with db_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO chain_cursors (chain_id, indexed_block, head, head_changed_at,"
                " last_error, last_error_at) VALUES (:c, 100, 120, now(), 'rpc timeout', now())"
            ),
            {"c": chain_id},
        )
    try:

        def lag() -> list[dict] | None:
            return query(prometheus, f'stride_chain_lag_blocks{{chain_id="{chain_id}"}}') or None

        (row,) = wait_for("the chain's lag in Prometheus", lag, timeout=30)
        assert float(row["value"][1]) == 20.0
        head = query(prometheus, f'stride_chain_head_block{{chain_id="{chain_id}"}}')
        assert float(head[0]["value"][1]) == 120.0
        failed = query(prometheus, f'stride_chain_last_step_failed{{chain_id="{chain_id}"}}')
        assert float(failed[0]["value"][1]) == 1.0
        assert query(prometheus, 'stride_exporter_source_up{source="chain"} == 1')
    finally:
        with db_engine.begin() as conn:
            conn.execute(text("DELETE FROM chain_cursors WHERE chain_id = :c"), {"c": chain_id})


def test_prometheus_evaluates_every_rule_and_alerts_on_a_target_down(
    prometheus: str, stack: Stack
) -> None:
    import yaml

    declared = {r["alert"] for r in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]}

    def rules() -> list[dict] | None:
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
        found = [rule for group in groups for rule in group["rules"]]
        evaluated = all(r.get("lastEvaluation", "").startswith("2") for r in found)
        return found if found and evaluated else None

    evaluated = wait_for("the rules evaluated", rules, timeout=30)
    assert {r["name"] for r in evaluated} == declared
    assert all(r["health"] == "ok" for r in evaluated), [
        r for r in evaluated if r["health"] != "ok"
    ]

    targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    jobs = {t["labels"]["job"] for t in targets}
    assert {"prometheus", "stride-exporter", "postgres"} <= jobs

    # A scraped service goes away (the postgres exporter, which nothing else here needs): its
    # target turns down and StrideTargetDown is pending for it (firing after `for: 2m`).
    def target_alert(state: str) -> bool:
        listed = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]
        health = {t["labels"]["job"]: t["health"] for t in listed["activeTargets"]}
        alerts = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        alerting = any(
            a["labels"]["alertname"] == "StrideTargetDown" and a["labels"]["job"] == "postgres"
            for a in alerts
            if a["state"] in ("pending", "firing")
        )
        return health.get("postgres") == state and alerting == (state == "down")

    exporter = Stack(stack.settings.model_copy(update={"scrape_interval_s": 1}), SERVICES)
    exporter.down(["postgres-exporter"], report=lambda _m: None)
    try:
        assert wait_for(
            "StrideTargetDown pending for the stopped exporter",
            lambda: target_alert("down"),
            timeout=60,
        )
    finally:
        exporter.up(["postgres-exporter"], report=lambda _m: None)
    assert wait_for("the exporter's target up again", lambda: target_alert("up"), timeout=60)


@pytest.mark.usefixtures("worker")
def test_one_events_request_id_is_in_the_api_log_and_the_worker_log(
    stack: Stack, api: httpx.Client, game: GameWithKey
) -> None:
    request_id = str(uuid.uuid4())
    response = api.post(
        "/v1/events/batch",
        json={"events": [score_event("p-trace", 5)]},
        headers={"X-Api-Key": game.api_key, "X-Request-ID": request_id},
    )
    assert response.status_code == 202, response.text
    assert response.headers["x-request-id"] == request_id

    def lines_of(service: str) -> list[dict]:
        found = []
        for line in stack.log_file(service).read_text().splitlines():
            if request_id in line and line.startswith("{"):
                found.append(json.loads(line))
        return found

    (api_line,) = wait_for("the API's log line", lambda: lines_of("api"), timeout=10)
    assert api_line["request_id"] == request_id
    assert (api_line["route"], api_line["status"]) == ("/v1/events/batch", 202)
    worker_lines = wait_for("the worker's batch lines", lambda: lines_of("worker"), timeout=60)
    # The scoring agent and the lake sink (its own consumer group) each log their batch.
    assert "score_events" in {line["agent"] for line in worker_lines}
    assert all(request_id in line["request_ids"] for line in worker_lines)

    settings = stack.settings
    api_metrics = httpx.get(f"http://127.0.0.1:{settings.api_metrics_port}/metrics").text
    batch_202 = 'method="POST",route="/v1/events/batch",status="202"'
    assert f"stride_http_requests_total{{{batch_202}}}" in api_metrics
    streams_metrics = httpx.get(f"http://127.0.0.1:{settings.streams_metrics_port}/metrics").text
    assert 'stride_stream_messages_total{agent="score_events",outcome="valid"}' in streams_metrics


@pytest.mark.usefixtures("worker")
def test_stride_status_shows_lag_and_errors(
    stack: Stack, api: httpx.Client, game: GameWithKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.monitoring import kafka_details

    post_batch(api, game.api_key, [score_event("p-status", 1)])
    wait_for(
        "the scoring group's first commit",
        lambda: "stride-streams" in kafka_details(stack.settings)["consumer_lag"],
    )
    assert api.get("/v1/nothing-here").status_code == 404
    result = CliRunner().invoke(app, ["status", "kafka", "api", "worker", "--json"])
    assert result.exit_code == 0, result.output
    entries = {e["name"]: e for e in json.loads(result.output)}
    lag = entries["kafka"]["details"]["consumer_lag"]
    assert "stride-streams" in lag
    assert all(group["lag"] >= 0 for group in lag.values())
    assert entries["api"]["details"]["requests"] >= 1
    assert entries["api"]["details"]["5xx"] >= 0
    dead = entries["worker"]["details"]["dead_letters"]
    assert set(dead) == set(DEAD_LETTER_TOPICS)
    # Wide enough for every consumer group of the session's broker: rich's console took
    # its width when cli.main was imported (COLUMNS read then), so it is set on it.
    import cli.main

    monkeypatch.setattr(cli.main.console, "_width", 400)  # restored as it was (None: auto)
    table = CliRunner().invoke(app, ["status", "kafka", "api", "worker"])
    for shown in ("lag: ", "stride-streams ", "5xx: ", "dead letters: ", "game.events.dlq.v1 "):
        assert shown in table.output, table.output
