"""Headless materialization of one day (used by ``stride pipeline run`` and the tests)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg

from dagster_project.assets import BRONZE_CHECKS, LAKEHOUSE_ASSETS, PIPELINE


@dataclass
class DayOutcome:
    day: date
    success: bool
    materialized: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


def materialize_day(
    day: date,
    resources: Mapping[str, Any],
    instance: dg.DagsterInstance | None = None,
    log_level: str = "DEBUG",
) -> DayOutcome:
    """Run silver → gold → warehouse for ``day``; a failed blocking check skips what follows."""
    # materialize runs asset checks too; its signature names only assets and specs.
    definitions: list[Any] = [*LAKEHOUSE_ASSETS, *BRONZE_CHECKS]
    result = dg.materialize(
        definitions,
        selection=PIPELINE,
        partition_key=day.isoformat(),
        resources=dict(resources),
        instance=instance,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    outcome = DayOutcome(day=day, success=result.success)
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        assert materialization is not None
        name = materialization.asset_key.to_user_string()
        outcome.materialized.append(name)
        rows = materialization.metadata.get("rows")
        if rows is not None:
            outcome.rows[name] = int(rows.value)  # type: ignore[arg-type]
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            key = evaluation.asset_check_key
            outcome.failed_checks.append(f"{key.asset_key.to_user_string()}:{key.name}")
    selected = {
        a.key.to_user_string()
        for a in LAKEHOUSE_ASSETS
        if isinstance(a, dg.AssetsDefinition) and a.group_names_by_key[a.key] != "bronze"
    }
    outcome.skipped = sorted(selected - set(outcome.materialized))
    return outcome
