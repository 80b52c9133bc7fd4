"""The lakehouse code location without Spark: where checks sit, where partitions start, the
sensor on bronze days outside them, the local instance's dagster.yaml."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from cli.services import _dagster_home
from core.lake.bronze import BRONZE_GAME_EVENTS, append_bronze
from core.platform.config import LakeSettings, Settings
from tests.lake_helpers import bronze_game_events


def test_bronze_freshness_is_checked_on_the_bronze_assets() -> None:
    from dagster_project.definitions import defs

    checks = defs.resolve_asset_graph().asset_check_keys
    fresh = sorted(k.asset_key.to_user_string() for k in checks if k.name == "bronze_fresh")
    assert fresh == ["bronze_game_events", "bronze_reward_commands", "bronze_wearable_samples"]
    # The daily job still runs them, as it did when they sat on silver.
    job_checks = defs.resolve_job_def("lakehouse_daily").asset_layer.asset_graph.asset_check_keys
    assert {k for k in checks if k.name == "bronze_fresh"} <= set(job_checks)


def test_a_stale_or_missing_bronze_table_warns(tmp_path: Path) -> None:
    from dagster_project.assets import BRONZE_CHECKS, LAKEHOUSE_ASSETS
    from dagster_project.resources import Lake, SparkConnect, WarehouseTarget

    append_bronze(str(tmp_path), BRONZE_GAME_EVENTS, bronze_game_events(1, 2, _first_day(), "g"))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*LAKEHOUSE_ASSETS, *BRONZE_CHECKS],
            selection=dg.AssetSelection.checks(*BRONZE_CHECKS),
            resources={  # only the lake is used: the checks read bronze's Delta log
                "lake": Lake(root=str(tmp_path)),
                "spark_steps": SparkConnect(url="sc://127.0.0.1:9"),
                "warehouse": WarehouseTarget(kind="postgres", url="", pseudonym_key="unused"),
            },
            instance=instance,
        )
        evaluations = {
            e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()
        }
    assert evaluations["bronze_game_events"].passed  # just written
    missing = evaluations["bronze_wearable_samples"]
    assert not missing.passed and missing.severity == dg.AssetCheckSeverity.WARN


def _first_day() -> date:
    from dagster_project.assets import daily

    return daily.start.date()


def test_partitions_start_on_the_configured_first_day() -> None:
    """Read when the code location loads: a fresh interpreter with the setting changed."""
    env = {**os.environ, "STRIDE_LAKE_FIRST_DAY": "2026-10-15"}
    code = (
        "from dagster_project.definitions import defs;"
        "print(defs.resolve_job_def('lakehouse_daily').partitions_def.get_first_partition_key())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "2026-10-15"


def test_the_default_first_day_is_documented() -> None:
    field = LakeSettings.model_fields["lake_first_day"]
    assert field.default.isoformat() in Path(".env.example").read_text()


@pytest.fixture
def lake_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from core.platform.config import get_settings

    monkeypatch.setenv("STRIDE_STATE_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        yield get_settings().lake_root
    finally:
        get_settings.cache_clear()


def test_the_sensor_skips_bronze_days_outside_the_partitions(lake_root: str) -> None:
    from dagster_project.definitions import new_bronze_data

    first = _first_day()
    before = first - timedelta(days=1)
    append_bronze(lake_root, BRONZE_GAME_EVENTS, bronze_game_events(1, 2, before, "g"))
    only_outside = new_bronze_data(dg.build_sensor_context(cursor=None))
    assert only_outside.run_requests == []
    assert before.isoformat() in str(only_outside.skip_reason)

    append_bronze(lake_root, BRONZE_GAME_EVENTS, bronze_game_events(10, 2, before, "g"))
    append_bronze(lake_root, BRONZE_GAME_EVENTS, bronze_game_events(20, 2, first, "g"))
    both = new_bronze_data(dg.build_sensor_context(cursor=only_outside.cursor))
    assert [r.partition_key for r in both.run_requests] == [first.isoformat()]


def test_the_stack_writes_a_dagster_yaml_without_telemetry_and_keeps_an_edited_one(
    tmp_path: Path,
) -> None:
    settings = Settings(state_dir=tmp_path)
    _dagster_home(settings, lambda _m: None)
    config = tmp_path / "dagster" / "dagster.yaml"
    assert yaml.safe_load(config.read_text()) == {"telemetry": {"enabled": False}}
    config.write_text("telemetry:\n  enabled: true\n")
    _dagster_home(settings, lambda _m: None)
    assert "enabled: true" in config.read_text()
