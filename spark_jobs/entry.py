"""The Spark steps as a batch job: EMR Serverless's ``entryPoint`` (or a local
``spark-submit``), reporting back to Dagster through Pipes.

    spark-submit spark_jobs/entry.py silver_game_events --day 2024-11-02 --lake s3://b/lake
    python -m spark_jobs.entry gold_game_daily --day 2024-11-02 --lake /path/to/lake
    spark-submit spark_jobs/entry.py maintain --table silver_game_events \
        --path s3://b/lake/silver/game_events --retention-hours 168

The session is the one ``spark-submit`` configured (Delta's extension and catalog come
from ``--conf``). Launched by Dagster (``DAGSTER_PIPES_CONTEXT`` in the environment: the
EMR Serverless client passes it as a driver environment variable), the step's metadata
and check results go back as Pipes messages on stdout (CloudWatch Logs on EMR, a file
locally); launched by hand, the outcome is printed as JSON. ``maintain`` runs Delta's
OPTIMIZE and VACUUM on one silver or gold table (``spark_jobs.maintenance``) and reports its
``MaintenanceReport`` as a Pipes custom message.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date
from typing import TYPE_CHECKING

from dagster_pipes import PipesContext, PipesEnvVarParamsLoader, open_dagster_pipes

from core.lake.bronze import MaintenanceReport
from spark_jobs.steps import STEPS, StepOutcome, run_step

MAINTAIN = "maintain"

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="spark_jobs.entry", description="Rebuild one day of one silver or gold table."
    )
    parser.add_argument("step", choices=STEPS, help="the asset to rebuild")
    parser.add_argument("--day", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    parser.add_argument("--lake", required=True, help="the lake root (s3://bucket/lake or a path)")
    return parser.parse_args(argv)


def parse_maintain_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"spark_jobs.entry {MAINTAIN}",
        description="OPTIMIZE and VACUUM one silver or gold Delta table.",
    )
    parser.add_argument("--table", required=True, help="the table's name, for the report")
    parser.add_argument("--path", required=True, help="the table's root (s3://... or a path)")
    parser.add_argument(
        "--retention-hours", required=True, type=int, help="VACUUM keeps removed files this long"
    )
    args = parser.parse_args(argv)
    if args.retention_hours < 0:
        parser.error("--retention-hours must be 0 or more")
    return args


def report_maintenance(pipes: PipesContext, outcome: MaintenanceReport) -> None:
    """The maintenance pass's figures as one Pipes custom message (an op, not an asset)."""
    pipes.report_custom_message({MAINTAIN: asdict(outcome)})


def report(pipes: PipesContext, outcome: StepOutcome) -> None:
    """The outcome as the Pipes messages the asset turns into its materialization and
    check results (the same ones the Spark Connect path builds in-process)."""
    pipes.report_asset_materialization(metadata=outcome.metadata)
    for check in outcome.checks:
        pipes.report_asset_check(
            check_name=check.name,
            passed=check.passed,
            severity="ERROR",
            metadata=check.metadata,
        )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [MAINTAIN]:
        return _maintain(parse_maintain_args(argv[1:]))
    args = parse_args(argv)
    session = _batch_session(f"stride-{args.step}")
    try:
        if PipesEnvVarParamsLoader().is_dagster_pipes_process():
            with open_dagster_pipes() as pipes:
                pipes.log.info(f"{args.step} {args.day} on {args.lake}")
                report(pipes, run_step(session, args.step, args.lake, args.day))
        else:
            outcome = run_step(session, args.step, args.lake, args.day)
            json.dump(asdict(outcome), sys.stdout, indent=2)
            print()
    finally:
        session.stop()
    return 0


def _maintain(args: argparse.Namespace) -> int:
    from spark_jobs.maintenance import maintain_table

    session = _batch_session(f"stride-maintain-{args.table}")
    try:
        outcome = maintain_table(
            session, args.path, retention_hours=args.retention_hours, table=args.table
        )
        if PipesEnvVarParamsLoader().is_dagster_pipes_process():
            with open_dagster_pipes() as pipes:
                pipes.log.info(f"maintained {args.table} at {args.path}")
                report_maintenance(pipes, outcome)
        else:
            json.dump(asdict(outcome), sys.stdout, indent=2)
            print()
    finally:
        session.stop()
    return 0


def _batch_session(name: str) -> SparkSession:
    from pyspark.sql import SparkSession

    # A batch job runs on the Spark that spark-submit started, never over Spark Connect:
    # pyspark marks a process (and so its children) as Connect clients in these variables.
    for variable in ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE", "SPARK_LOCAL_REMOTE"):
        os.environ.pop(variable, None)
    return SparkSession.builder.appName(name).getOrCreate()


if __name__ == "__main__":
    sys.exit(main())
