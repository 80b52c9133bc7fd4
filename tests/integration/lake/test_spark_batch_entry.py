"""The batch entry point (EMR Serverless's ``entryPoint``) run for real under a local
``spark-submit`` through Dagster Pipes, against the Spark Connect path: the same Delta
tables, the same metadata and the same check results in the Dagster UI."""

from __future__ import annotations

import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from deltalake import DeltaTable

from cli.engines import jars
from cli.spark_service import pyspark_home, spark_conf
from core.lake.bronze import (
    BRONZE_GAME_EVENTS,
    BRONZE_REWARD_COMMANDS,
    GOLD_GAME_DAILY,
    SILVER_GAME_EVENTS,
    MaintenanceReport,
    append_bronze,
    table_uri,
)
from core.platform.config import REPO_ROOT, Settings
from core.rewards.commands import RewardAction
from dagster_project.assets import LAKEHOUSE_ASSETS, gold_game_daily, silver_game_events
from dagster_project.resources import Lake, SparkConnect, SparkSteps, SparkSubmit, WarehouseTarget
from tests.lake_helpers import bronze_game_events, bronze_reward_commands, reward_command

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY = date(2026, 11, 21)
# What a local batch job does not need from the server's configuration.
_SERVER_ONLY = ("spark.master", "spark.app.name", "spark.connect.", "spark.ui.")


def spark_submit(settings: Settings) -> SparkSubmit:
    """spark-submit of the pyspark package with Delta's and S3A's jars and the local
    server's Spark configuration: what EMR's sparkSubmitParameters give the job there."""
    conf = {k: v for k, v in spark_conf(settings).items() if not k.startswith(_SERVER_ONLY)}
    command = [
        str(pyspark_home() / "bin" / "spark-submit"),
        "--master",
        "local[1]",
        "--driver-memory",
        "1g",
        "--jars",
        ",".join(str(p) for p in jars("spark")),
        *(arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")),
    ]
    env = {
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYTHONPATH": str(REPO_ROOT),
        "SPARK_HOME": str(pyspark_home()),
        "PATH": os.environ["PATH"],
    }
    return SparkSubmit(command=command, env=env)


def _bronze(root: str) -> None:
    append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(0, 4, DAY, "tri"))
    append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(0, 2, DAY, "tri"))  # redelivered
    append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(100, 2, DAY, "duo"))
    noon = datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=UTC)
    commands = [reward_command("tri", RewardAction.mint, "10", noon, event=1)]
    append_bronze(root, BRONZE_REWARD_COMMANDS, bronze_reward_commands(commands, noon))


def _materialize(root: str, steps: SparkSteps) -> dict[str, Any]:
    """silver_game_events then gold_game_daily for DAY; what the UI would show of each."""
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            LAKEHOUSE_ASSETS,
            selection=[silver_game_events.key, gold_game_daily.key],
            partition_key=DAY.isoformat(),
            resources={
                "spark_steps": steps,
                "lake": Lake(root=root),
                "warehouse": WarehouseTarget(kind="postgres", url="", pseudonym_key="unused"),
            },
            instance=instance,
            raise_on_error=True,
        )
    shown: dict[str, Any] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        shown[materialization.asset_key.to_user_string()] = {
            name: value.value
            for name, value in materialization.metadata.items()
            if name != "delta_table"  # the roots differ
        }
    for evaluation in result.get_asset_check_evaluations():
        shown[f"check {evaluation.check_name}"] = (
            evaluation.passed,
            {name: value.value for name, value in evaluation.metadata.items()},
        )
    shown["tables"] = {
        table: sorted(
            map(tuple, DeltaTable(table_uri(root, table)).to_pandas().astype(str).values.tolist())
        )
        for table in (SILVER_GAME_EVENTS, GOLD_GAME_DAILY)
    }
    return shown


def test_the_batch_entry_point_through_pipes_matches_spark_connect(
    spark: Settings, tmp_path: Path
) -> None:
    connect_root, batch_root = str(tmp_path / "connect"), str(tmp_path / "batch")
    for root in (connect_root, batch_root):
        _bronze(root)

    over_connect = _materialize(connect_root, SparkConnect(url=spark.spark_url))
    as_batch = _materialize(batch_root, spark_submit(spark))

    assert as_batch == over_connect
    assert over_connect["silver_game_events"]["rows"] == 6  # 4 + 2 events, the copies once
    assert over_connect["silver_game_events"]["dropped_by_dedupe"] == 2
    assert over_connect["check row_count_sane"] == (True, {"gold_rows": 2, "silver_keys": 2})
    assert "preview" in over_connect["gold_game_daily"]
    assert len(over_connect["tables"][GOLD_GAME_DAILY]) == 2
    # The nightly maintenance's batch path on the same Spark: OPTIMIZE and VACUUM of the
    # silver table as a job of the entry point, its report back through Pipes.
    report = _maintain(batch_root, SILVER_GAME_EVENTS, spark_submit(spark))
    assert report.exists and report.table == SILVER_GAME_EVENTS
    assert report.version_after > report.version_before
    assert report.files_after <= report.files_before
    operations = [
        entry["operation"]
        for entry in DeltaTable(table_uri(batch_root, SILVER_GAME_EVENTS)).history()
    ]
    # the retention set once, then VACUUM (OPTIMIZE commits only when there is something to
    # compact: one small file per day here)
    assert operations[:3] == ["VACUUM END", "VACUUM START", "SET TBLPROPERTIES"]


def _maintain(root: str, table: str, steps: SparkSteps) -> MaintenanceReport:
    @dg.op  # context unannotated: dagster refuses this module's string annotation for it
    def maintain(context, spark_steps: SparkSteps) -> MaintenanceReport:  # type: ignore[no-untyped-def]
        return spark_steps.maintain(context, table, table_uri(root, table), retention_hours=168)

    @dg.job
    def maintenance() -> None:
        maintain()

    result = maintenance.execute_in_process(resources={"spark_steps": steps})
    outcome = result.output_for_node("maintain")
    assert isinstance(outcome, MaintenanceReport)
    return outcome
