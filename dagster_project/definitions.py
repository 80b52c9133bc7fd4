"""The Dagster code location: assets, the daily job and schedule, the new-bronze sensor,
the hourly bronze maintenance job and the nightly silver/gold maintenance job.

``dagster dev -m dagster_project.definitions`` serves it (``stride up dagster``);
``stride pipeline run`` materializes it headless.
"""

from __future__ import annotations

import json

import dagster as dg

from core.lake.bronze import BRONZE_TABLES, days_appended_since
from core.platform.config import get_settings
from dagster_project.assets import BRONZE_CHECKS, LAKEHOUSE_ASSETS, PIPELINE, daily
from dagster_project.maintenance import (
    LAKEHOUSE_JOB,
    bronze_maintenance_job,
    hourly_bronze_maintenance,
    nightly_silver_gold_maintenance,
    silver_gold_maintenance_job,
)
from dagster_project.resources import current_resources

lakehouse_job = dg.define_asset_job(
    LAKEHOUSE_JOB,
    selection=PIPELINE,
    partitions_def=daily,
    description="Rebuild one day: silver → gold (checked) → warehouse",
)

# Yesterday's partition, once the day is over everywhere it matters (01:30 UTC).
daily_schedule = dg.build_schedule_from_partitioned_job(
    lakehouse_job,
    hour_of_day=1,
    minute_of_hour=30,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


@dg.sensor(
    job=lakehouse_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING
)
def new_bronze_data(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """One run per day that got new bronze rows since the last tick (late data included);
    files rewritten by the hourly maintenance hold the same rows and start no run.

    A bronze day outside the partitions (before ``STRIDE_LAKE_FIRST_DAY``: a backdated
    wearable export; or after today) starts no run: it is logged and named in the
    tick's skip reason, and the cursor moves past it."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    lake_root = get_settings().lake_root
    days: set[str] = set()
    for table in BRONZE_TABLES:
        version, written = days_appended_since(lake_root, table, cursor.get(table, -1))
        cursor[table] = version
        days.update(d.isoformat() for d in written)
    outside = sorted(d for d in days if not daily.has_partition_key(d))
    requests = [
        dg.RunRequest(partition_key=day, run_key=f"{day}:{json.dumps(cursor, sort_keys=True)}")
        for day in sorted(days - set(outside))
    ]
    skip_reason = None
    if outside:
        shown = ", ".join(outside[:10]) + (
            f" and {len(outside) - 10} more" if len(outside) > 10 else ""
        )
        message = (
            f"new bronze rows on {len(outside)} day(s) outside the partitions "
            f"({daily.start.date().isoformat()} … today), not rebuilt: {shown}"
        )
        context.log.warning(message)
        if not requests:
            skip_reason = message
    elif not requests:
        skip_reason = "no new bronze rows"
    return dg.SensorResult(
        run_requests=requests, cursor=json.dumps(cursor), skip_reason=skip_reason
    )


defs = dg.Definitions(
    assets=LAKEHOUSE_ASSETS,
    asset_checks=BRONZE_CHECKS,
    jobs=[lakehouse_job, bronze_maintenance_job, silver_gold_maintenance_job],
    schedules=[daily_schedule, hourly_bronze_maintenance, nightly_silver_gold_maintenance],
    sensors=[new_bronze_data],
    resources=current_resources(),
)
