"""Runs launched through the Dagster instance, as the data engineer's screen launches them.

``dagster dev`` is started by the stack's supervisor with the DAGSTER service of
``cli/services.py`` (its DAGSTER_HOME and dagster.yaml, its environment), on the session's
Spark Connect server and PostgreSQL. Runs go through the instance's run queue, the daemon
and the default run launcher (a ``dagster api execute_run`` subprocess, then one step
subprocess per asset): the path that used to fail in ``silver_game_events`` with
``SystemExit: -1`` ("Could not find valid SPARK_HOME") while ``materialize()`` in-process
passed. One module: the sensor's first tick (a bronze day before the first partition),
a sensor-triggered run after bronze is appended, then a run launched with GraphQL's
``launchRun`` (what the UI's Materialize sends).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyarrow as pa
import pytest

from cli.stack import Stack
from core.lake.bronze import BRONZE_GAME_EVENTS, append_bronze
from core.platform.config import Settings, get_settings
from tests.lake_helpers import bronze_game_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY = date(2026, 11, 20)
BEFORE_FIRST_PARTITION = date(2019, 12, 31)
GAME = "daemon-arena"
RUN_TIMEOUT_S = 600  # a whole run on a loaded 2-core machine; polled, not slept
TICK_TIMEOUT_S = 180  # the sensor ticks at most every 60 s


@dataclass
class Dagster:
    settings: Settings
    url: str
    location: str
    repository: str

    def query(self, query: str, **variables: Any) -> dict[str, Any]:
        answer = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=30
        )
        answer.raise_for_status()
        body = answer.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def sensor_ticks(self) -> list[dict[str, Any]]:
        data = self.query(
            """query ($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {
                __typename ... on Sensor { sensorState { ticks(limit: 20) {
                    status skipReason runIds error { message } } } } } }""",
            s={
                "repositoryLocationName": self.location,
                "repositoryName": self.repository,
                "sensorName": "new_bronze_data",
            },
        )["sensorOrError"]
        assert data["__typename"] == "Sensor", data
        return data["sensorState"]["ticks"]

    def run(self, run_id: str) -> dict[str, Any]:
        data = self.query(
            """query ($id: ID!) { runOrError(runId: $id) { __typename ... on Run {
                runId status tags { key value } } } }""",
            id=run_id,
        )["runOrError"]
        assert data["__typename"] == "Run", data
        return data

    def wait_for_run(self, run_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
                return run
            time.sleep(1)  # polling the run's status, bounded by the deadline
        raise AssertionError(f"run {run_id} not finished after {RUN_TIMEOUT_S}s")

    def failure(self, run_id: str) -> str:
        """The error messages of a run's event log (for the assertion message)."""
        data = self.query(
            """query ($id: ID!) { logsForRun(runId: $id) { ... on EventConnection {
                events { __typename ... on ErrorEvent { error { message stack } } } } } }""",
            id=run_id,
        )["logsForRun"]
        return "\n".join(
            e["error"]["message"] + "".join(e["error"]["stack"][-3:])
            for e in data.get("events", [])
            if e.get("error")
        )


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)  # readiness polling, bounded by the deadline
    raise AssertionError(f"{what}: not after {timeout:.0f}s")


@pytest.fixture(scope="module")
def dagster(
    stack: Stack, spark: Settings, postgres: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dagster]:
    """``stride up dagster`` on a lake of its own (other tests' bronze days would each
    start a sensor run), holding one bronze day before the first partition."""
    lake = tmp_path_factory.mktemp("daemon-lake")
    saved = os.environ.get("STRIDE_LAKE_DIR")
    os.environ["STRIDE_LAKE_DIR"] = str(lake)  # the dagster process inherits it
    get_settings.cache_clear()
    settings = get_settings()
    append_bronze(
        settings.lake_root,
        BRONZE_GAME_EVENTS,
        bronze_game_events(1, 2, BEFORE_FIRST_PARTITION, GAME),
    )
    supervisor = Stack(settings, stack.services.values())
    try:
        supervisor.up(["dagster"], report=lambda _m: None)
        url = f"http://127.0.0.1:{settings.dagster_port}"

        def loaded() -> tuple[str, str] | None:
            data = httpx.post(
                f"{url}/graphql",
                json={
                    "query": "{ repositoriesOrError { ... on RepositoryConnection { nodes { "
                    "name location { name } jobs { name } } } } }"
                },
                timeout=30,
            ).json()["data"]["repositoriesOrError"]
            for node in data.get("nodes", []):
                if any(j["name"] == "lakehouse_daily" for j in node["jobs"]):
                    return node["location"]["name"], node["name"]
            return None

        location, repository = _wait(loaded, 120, "the code location loads")
        yield Dagster(settings, url, location, repository)
    finally:
        supervisor.stop("dagster", report=lambda _m: None)
        if saved is None:
            os.environ.pop("STRIDE_LAKE_DIR", None)
        else:
            os.environ["STRIDE_LAKE_DIR"] = saved
        get_settings.cache_clear()


def _warehouse(settings: Settings, query: str, *args: Any) -> list[tuple]:
    dsn = settings.warehouse_db_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, args).fetchall()


GAME_DAY = "SELECT events, active_players FROM game_daily WHERE date = %s AND game_id = %s"


def test_the_home_has_a_dagster_yaml_without_telemetry(dagster: Dagster) -> None:
    import yaml

    config = Path(dagster.settings.state_dir, "dagster", "dagster.yaml")
    assert yaml.safe_load(config.read_text())["telemetry"] == {"enabled": False}


def test_a_bronze_day_before_the_first_partition_is_skipped_not_an_error(
    dagster: Dagster,
) -> None:
    def evaluated() -> list[dict[str, Any]]:
        return [t for t in dagster.sensor_ticks() if t["status"] != "STARTED"]

    ticks = _wait(evaluated, TICK_TIMEOUT_S, "the sensor's first tick")
    assert all(t["status"] != "FAILURE" for t in ticks), ticks
    first = ticks[-1]
    assert first["status"] == "SKIPPED", first
    assert BEFORE_FIRST_PARTITION.isoformat() in first["skipReason"]


def test_new_bronze_rows_start_a_sensor_run_through_the_daemon(dagster: Dagster) -> None:
    before = {r for t in dagster.sensor_ticks() for r in t["runIds"]}
    # 5 events, one of them delivered again two days later (the sink keeps redeliveries,
    # silver dedupes; the copy is a late row: its day was over in every time zone).
    append_bronze(
        dagster.settings.lake_root, BRONZE_GAME_EVENTS, bronze_game_events(100, 5, DAY, GAME)
    )
    late = bronze_game_events(104, 1, DAY, GAME)
    at = pa.array([datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC) + timedelta(days=2)])
    late = late.set_column(
        late.schema.get_field_index("ingested_at"),
        "ingested_at",
        at.cast(late.schema.field("ingested_at").type),
    )
    append_bronze(dagster.settings.lake_root, BRONZE_GAME_EVENTS, late)

    def new_run() -> str | None:
        ticks = dagster.sensor_ticks()
        assert all(t["status"] != "FAILURE" for t in ticks), ticks
        runs = [r for t in ticks for r in t["runIds"] if r not in before]
        return runs[0] if runs else None

    run_id = _wait(new_run, TICK_TIMEOUT_S, "a sensor run for the new bronze rows")
    run = dagster.wait_for_run(run_id)
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["dagster/partition"] == DAY.isoformat()
    assert tags["dagster/sensor_name"] == "new_bronze_data"
    assert run["status"] == "SUCCESS", dagster.failure(run_id)
    assert _warehouse(dagster.settings, GAME_DAY, DAY, GAME) == [(5, 3)]

    metadata = _materialization_metadata(dagster, "silver_game_events", run_id)
    assert (metadata["rows_in"], metadata["rows_out"], metadata["dropped_by_dedupe"]) == (6, 5, 1)
    assert metadata["late_rows"] == 1 and metadata["delta_version"] >= 0
    preview = _materialization_metadata(dagster, "gold_game_daily", run_id)["preview"]
    assert GAME in preview and "events" in preview


def test_a_launched_run_goes_through_the_run_launcher(dagster: Dagster) -> None:
    """``launchRun`` of one partition of the job: the UI's Materialize."""
    _warehouse_delete(dagster.settings)
    data = dagster.query(
        """mutation ($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
            ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
            ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid {
            errors { message } } } }""",
        p={
            "selector": {
                "repositoryLocationName": dagster.location,
                "repositoryName": dagster.repository,
                "jobName": "lakehouse_daily",
            },
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": DAY.isoformat()}]},
        },
    )["launchRun"]
    assert data["__typename"] == "LaunchRunSuccess", data
    run_id = data["run"]["runId"]
    run = dagster.wait_for_run(run_id)
    assert run["status"] == "SUCCESS", dagster.failure(run_id)
    assert _warehouse(dagster.settings, GAME_DAY, DAY, GAME) == [(5, 3)]


def _warehouse_delete(settings: Settings) -> None:
    dsn = settings.warehouse_db_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        conn.execute("DELETE FROM game_daily WHERE date = %s AND game_id = %s", (DAY, GAME))
    assert _warehouse(settings, GAME_DAY, DAY, GAME) == []


def _materialization_metadata(dagster: Dagster, asset: str, run_id: str) -> dict[str, Any]:
    """The metadata of ``asset``'s materialization in ``run_id``, as the UI shows it."""
    data = dagster.query(
        """query ($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
            __typename ... on MaterializationEvent { assetKey { path } metadataEntries {
            label __typename ... on IntMetadataEntry { intValue }
            ... on MarkdownMetadataEntry { mdStr } ... on PathMetadataEntry { path } } } } } } }""",
        id=run_id,
    )["logsForRun"]
    for event in data["events"]:
        if event["__typename"] == "MaterializationEvent" and event["assetKey"]["path"] == [asset]:
            return {
                e["label"]: e.get("intValue", e.get("mdStr", e.get("path")))
                for e in event["metadataEntries"]
            }
    raise AssertionError(f"no materialization of {asset} in run {run_id}")
