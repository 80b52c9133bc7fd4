"""Lake maintenance: bronze every hour (delta-rs), silver and gold every night (Spark).

Bronze: the lake sink commits a small file to each bronze table every few hundred
milliseconds, and every Delta commit costs more CPU the more live files and log entries the
table has. ``bronze_maintenance`` keeps that cost flat (see ``core.lake.bronze.maintain_bronze``).
It is its own unpartitioned job: it neither waits for the daily lakehouse partitions nor
holds them up, and the sink keeps appending while it runs.

Silver and gold: Spark rewrites a day per rebuild, leaving removed files behind and small
files per day. ``silver_gold_maintenance`` runs Delta's ``OPTIMIZE`` and ``VACUUM`` on them
with Spark (``spark_jobs.maintenance``; over Spark Connect, or as an EMR Serverless job run
of ``spark_jobs/entry.py maintain`` in production) at 03:15 UTC, after the 01:30 daily run.
"""

import dagster as dg

from core.lake.bronze import (
    BRONZE_GAME_EVENTS,
    BRONZE_REWARD_COMMANDS,
    BRONZE_WEARABLE_SAMPLES,
    GOLD_GAME_DAILY,
    GOLD_USER_DAILY_HEALTH,
    SILVER_GAME_EVENTS,
    SILVER_REWARD_COMMANDS,
    SILVER_WEARABLE_SAMPLES,
    MaintenanceReport,
    maintain_bronze,
    table_uri,
)
from dagster_project.resources import Lake, SparkSteps

MAINTENANCE_JOB = "bronze_maintenance"
SPARK_MAINTENANCE_JOB = "silver_gold_maintenance"
LAKEHOUSE_JOB = "lakehouse_daily"
_UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _report(context: dg.OpExecutionContext, asset: str, report: MaintenanceReport) -> None:
    """The pass's figures as the op's output metadata and, on the table's asset page, as an
    observation (next to its checks); a table not written yet is said so."""
    metadata = report.as_metadata()
    context.add_output_metadata(metadata)
    if not report.exists:
        context.log.info(f"{report.table} does not exist yet: nothing to maintain")
        return
    context.log_event(dg.AssetObservation(asset_key=asset, metadata=metadata))
    context.log.info(
        f"{report.table}: {report.files_before} → {report.files_after} files, "
        f"{report.files_vacuumed} vacuumed, {report.seconds} s"
    )


def _maintenance_op(table: str, asset: str) -> dg.OpDefinition:
    @dg.op(
        name=f"maintain_{asset}",
        description=f"Log retention, compact, checkpoint, clean the log, vacuum {table}",
    )
    def maintain(context: dg.OpExecutionContext, lake: Lake) -> None:
        report = maintain_bronze(
            lake.root, table, vacuum_retention_hours=lake.vacuum_retention_hours
        )
        _report(context, asset, report)

    return maintain


maintain_wearable_samples = _maintenance_op(BRONZE_WEARABLE_SAMPLES, "bronze_wearable_samples")
maintain_game_events = _maintenance_op(BRONZE_GAME_EVENTS, "bronze_game_events")
maintain_reward_commands = _maintenance_op(BRONZE_REWARD_COMMANDS, "bronze_reward_commands")


@dg.job(
    name=MAINTENANCE_JOB,
    description="Bronze Delta tables: compact small files, checkpoint, clean the log, vacuum",
    # One table after the other in the run's own process: the sink shares the machine.
    executor_def=dg.in_process_executor,
)
def bronze_maintenance_job() -> None:
    maintain_wearable_samples()
    maintain_game_events()
    maintain_reward_commands()


@dg.schedule(
    job=bronze_maintenance_job,
    cron_schedule="45 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def hourly_bronze_maintenance(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    """Hourly (the sink writes ~1,800 files an hour at 10k events/s), never two at once:
    two compactions of the same files would conflict and one would fail."""
    unfinished = context.instance.get_run_records(
        dg.RunsFilter(job_name=MAINTENANCE_JOB, statuses=_UNFINISHED), limit=1
    )
    if unfinished:
        return dg.SkipReason(
            f"{MAINTENANCE_JOB} run {unfinished[0].dagster_run.run_id} is still going"
        )
    return dg.RunRequest()


SPARK_TABLES = {
    "silver_wearable_samples": SILVER_WEARABLE_SAMPLES,
    "silver_game_events": SILVER_GAME_EVENTS,
    "silver_reward_commands": SILVER_REWARD_COMMANDS,
    "gold_user_daily_health": GOLD_USER_DAILY_HEALTH,
    "gold_game_daily": GOLD_GAME_DAILY,
}


def _spark_maintenance_op(table: str, asset: str) -> dg.OpDefinition:
    @dg.op(
        name=f"maintain_{asset}",
        description=f"Delta OPTIMIZE and VACUUM of {table} with Spark (Spark Connect, or an "
        "EMR Serverless job run: STRIDE_SPARK_MODE)",
        # A lakehouse run that rebuilds a day of this table meanwhile makes one of the two
        # commits fail on Delta's conflict check; the maintenance tries again.
        retry_policy=dg.RetryPolicy(max_retries=2, delay=30),
    )
    def maintain(context: dg.OpExecutionContext, spark_steps: SparkSteps, lake: Lake) -> None:
        report = spark_steps.maintain(
            context,
            table,
            table_uri(lake.root, table),
            retention_hours=lake.vacuum_retention_hours,
        )
        _report(context, asset, report)

    return maintain


_spark_ops = [_spark_maintenance_op(table, asset) for asset, table in SPARK_TABLES.items()]


@dg.job(
    name=SPARK_MAINTENANCE_JOB,
    description="Silver and gold Delta tables: OPTIMIZE and VACUUM with Spark",
    executor_def=dg.in_process_executor,  # one table after the other: 2 cores, one server
)
def silver_gold_maintenance_job() -> None:
    for op in _spark_ops:
        op()


@dg.schedule(
    job=silver_gold_maintenance_job,
    cron_schedule="15 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_silver_gold_maintenance(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    """Nightly, after the 01:30 daily run; skipped while a lakehouse run (which writes these
    tables) or a previous maintenance run is unfinished."""
    for job in (LAKEHOUSE_JOB, SPARK_MAINTENANCE_JOB):
        unfinished = context.instance.get_run_records(
            dg.RunsFilter(job_name=job, statuses=_UNFINISHED), limit=1
        )
        if unfinished:
            return dg.SkipReason(f"{job} run {unfinished[0].dagster_run.run_id} is still going")
    return dg.RunRequest()
