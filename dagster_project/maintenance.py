"""Bronze table maintenance, every hour: compaction, checkpoint, log cleanup, vacuum.

The lake sink commits a small file to each bronze table every few hundred milliseconds,
and every Delta commit costs more CPU the more live files and log entries the table has.
This job keeps that cost flat (see ``core.lake.maintain_bronze``). It is its own
unpartitioned job: it neither waits for the daily lakehouse partitions nor holds them up,
and the sink keeps appending while it runs.
"""

import dagster as dg

from core.lake import BRONZE_GAME_EVENTS, BRONZE_WEARABLE_SAMPLES, maintain_bronze
from dagster_project.resources import Lake

MAINTENANCE_JOB = "bronze_maintenance"


def _maintenance_op(table: str, asset: str) -> dg.OpDefinition:
    @dg.op(
        name=f"maintain_{asset}",
        description=f"Log retention, compact, checkpoint, clean the log, vacuum {table}",
    )
    def maintain(context: dg.OpExecutionContext, lake: Lake) -> None:
        report = maintain_bronze(
            lake.root, table, vacuum_retention_hours=lake.vacuum_retention_hours
        )
        metadata = report.as_metadata()
        context.add_output_metadata(metadata)
        if not report.exists:
            context.log.info(f"{table} does not exist yet: nothing to maintain")
            return
        # Also on the bronze asset's page, next to its freshness check.
        context.log_event(dg.AssetObservation(asset_key=asset, metadata=metadata))
        context.log.info(
            f"{table}: {report.files_before} → {report.files_after} files, "
            f"{report.files_vacuumed} vacuumed, {report.seconds} s"
        )

    return maintain


maintain_wearable_samples = _maintenance_op(BRONZE_WEARABLE_SAMPLES, "bronze_wearable_samples")
maintain_game_events = _maintenance_op(BRONZE_GAME_EVENTS, "bronze_game_events")


@dg.job(
    name=MAINTENANCE_JOB,
    description="Bronze Delta tables: compact small files, checkpoint, clean the log, vacuum",
    # One table after the other in the run's own process: the sink shares the machine.
    executor_def=dg.in_process_executor,
)
def bronze_maintenance_job() -> None:
    maintain_wearable_samples()
    maintain_game_events()


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
        dg.RunsFilter(
            job_name=MAINTENANCE_JOB,
            statuses=[
                dg.DagsterRunStatus.QUEUED,
                dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED,
            ],
        ),
        limit=1,
    )
    if unfinished:
        return dg.SkipReason(
            f"{MAINTENANCE_JOB} run {unfinished[0].dagster_run.run_id} is still going"
        )
    return dg.RunRequest()
