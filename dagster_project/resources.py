"""Resources per environment: where Spark, the lake and the warehouse are.

``local``/``test``: the stack's Spark Connect server (Spark 4.1 + Delta 4.3), the lake
folder under the state dir (or an ``s3a://`` lake, see ``STRIDE_LAKE_S3_*``) and the
``warehouse`` PostgreSQL database. ``prod``: an ``s3://`` lake, Redshift, and the silver
and gold steps as EMR Serverless job runs (``STRIDE_SPARK_MODE=emr-serverless``) or over a
Spark Connect URL. Only settings differ; the asset code is the same: it asks the
``spark_steps`` resource to run its step (``spark_jobs.steps``) and gets the same metadata
and check results back whichever way the step ran.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
from dagster_aws.pipes import PipesCloudWatchMessageReader, PipesEMRServerlessClient
from pyspark.sql import SparkSession

from core.lake.bronze import VACUUM_RETENTION_HOURS, MaintenanceReport
from core.platform.config import Settings, SparkSettings, get_settings
from core.warehouse.load import PostgresWarehouse, RedshiftWarehouse, Warehouse
from spark_jobs.maintenance import maintain_table
from spark_jobs.session import spark_session
from spark_jobs.steps import Metadata, StepOutcome, run_step

# The batch entry point (a file, as spark-submit and EMR's entryPoint take it).
ENTRY_POINT = Path(__file__).resolve().parents[1] / "spark_jobs" / "entry.py"
# EMR Serverless job run states (GetJobRun): still going, and the failed ends.
EMR_RUNNING = frozenset({"SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "QUEUED"})
EMR_FAILED = frozenset({"FAILED", "CANCELLED", "CANCELLING"})


@dataclass(frozen=True)
class StepRun:
    """A step's materialization metadata and check results, as the Dagster UI shows them."""

    metadata: dict[str, dg.MetadataValue]
    checks: list[dg.AssetCheckResult]


def _metadata_value(value: dict[str, Any]) -> dg.MetadataValue:
    """One Pipes-shaped value of ``spark_jobs.steps`` as Dagster's own type."""
    kinds: dict[str, Callable[[Any], dg.MetadataValue]] = {
        "int": dg.MetadataValue.int,
        "md": dg.MetadataValue.md,
        "path": dg.MetadataValue.path,
    }
    return kinds[value["type"]](value["raw_value"])


def _dagster_metadata(metadata: Metadata) -> dict[str, dg.MetadataValue]:
    return {name: _metadata_value(value) for name, value in metadata.items()}


def step_run_of(asset: dg.AssetKey, outcome: StepOutcome) -> StepRun:
    """A step run in-process: the same conversion Pipes applies to the job's messages."""
    return StepRun(
        metadata=_dagster_metadata(outcome.metadata),
        checks=[
            dg.AssetCheckResult(
                asset_key=asset,
                check_name=check.name,
                passed=check.passed,
                metadata=_dagster_metadata(check.metadata),
            )
            for check in outcome.checks
        ],
    )


def step_run_from_pipes(
    invocation: dg.PipesClientCompletedInvocation, step: str, extra: dict[str, Any] | None = None
) -> StepRun:
    """The step's results as the job reported them through Pipes (one materialization and
    its checks); a job that exited without reporting is an error, not an empty success."""
    results = invocation.get_results()
    materializations = [r for r in results if isinstance(r, dg.MaterializeResult)]
    if len(materializations) != 1:
        raise dg.Failure(
            description=f"the {step} job reported {len(materializations)} materializations "
            "through Dagster Pipes, not 1: see the job's driver log"
        )
    metadata = dict(materializations[0].metadata or {})
    metadata.update(extra or {})
    checks = [r for r in results if isinstance(r, dg.AssetCheckResult)]
    return StepRun(metadata=metadata, checks=checks)  # type: ignore[arg-type]


def _step_args(step: str, day: date, lake_root: str) -> list[str]:
    return [step, "--day", day.isoformat(), "--lake", lake_root]


def _maintain_args(table: str, path: str, retention_hours: int) -> list[str]:
    return ["maintain", "--table", table, "--path", path, "--retention-hours", str(retention_hours)]


def maintenance_from_pipes(
    invocation: dg.PipesClientCompletedInvocation, table: str
) -> MaintenanceReport:
    """The maintenance pass's report as the job sent it (one custom message)."""
    reports = [
        message["maintain"]
        for message in invocation.get_custom_messages()
        if isinstance(message, dict) and "maintain" in message
    ]
    if len(reports) != 1:
        raise dg.Failure(
            description=f"the maintenance job of {table} reported {len(reports)} results "
            "through Dagster Pipes, not 1: see the job's driver log"
        )
    return MaintenanceReport(**reports[0])


class SparkSteps(dg.ConfigurableResource):
    """Runs a silver or gold step (``spark_jobs.steps``) for one day, and the maintenance
    of a silver or gold table (``spark_jobs.maintenance``): what the assets and the nightly
    maintenance job need, in-process or as batch jobs."""

    def run_step(
        self, context: dg.AssetExecutionContext, step: str, day: date, lake_root: str
    ) -> StepRun:
        raise NotImplementedError

    def maintain(
        self, context: dg.OpExecutionContext, table: str, path: str, retention_hours: int
    ) -> MaintenanceReport:
        raise NotImplementedError


class SparkConnect(SparkSteps):
    """A Spark Connect endpoint (``sc://host:port``): steps run in the Dagster process."""

    url: str

    def session(self) -> SparkSession:
        return spark_session(self.url)

    def run_step(
        self, context: dg.AssetExecutionContext, step: str, day: date, lake_root: str
    ) -> StepRun:
        return step_run_of(context.asset_key, run_step(self.session(), step, lake_root, day))

    def maintain(
        self, context: dg.OpExecutionContext, table: str, path: str, retention_hours: int
    ) -> MaintenanceReport:
        return maintain_table(self.session(), path, retention_hours=retention_hours, table=table)


class SparkSubmit(SparkSteps):
    """The batch entry point under a local ``spark-submit`` (``command``: the launcher and
    its options, up to the application), reporting through Pipes exactly as on EMR
    Serverless: the EMR path's job side, run where there is no AWS."""

    command: list[str]
    env: dict[str, str] | None = None

    def run_step(
        self, context: dg.AssetExecutionContext, step: str, day: date, lake_root: str
    ) -> StepRun:
        invocation = dg.PipesSubprocessClient(env=self.env).run(
            context=context,
            command=[*self.command, str(ENTRY_POINT), *_step_args(step, day, lake_root)],
        )
        return step_run_from_pipes(invocation, step)

    def maintain(
        self, context: dg.OpExecutionContext, table: str, path: str, retention_hours: int
    ) -> MaintenanceReport:
        invocation = dg.PipesSubprocessClient(env=self.env).run(
            context=context,
            command=[
                *self.command,
                str(ENTRY_POINT),
                *_maintain_args(table, path, retention_hours),
            ],
        )
        return maintenance_from_pipes(invocation, table)


def emr_spark_submit_parameters(settings: SparkSettings) -> str:
    """spark-submit options of a job run: Delta from the release's jars, UTC sessions, the
    code bundle and, when given, the packed Python environment."""
    conf = {
        "spark.jars": settings.spark_emr_delta_jars,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
    }
    if settings.spark_emr_py_files:
        conf["spark.submit.pyFiles"] = settings.spark_emr_py_files
    if settings.spark_emr_python_archive:
        python = "./environment/bin/python"
        conf["spark.archives"] = f"{settings.spark_emr_python_archive}#environment"
        conf["spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON"] = python
        conf["spark.emr-serverless.driverEnv.PYSPARK_PYTHON"] = python
        conf["spark.executorEnv.PYSPARK_PYTHON"] = python
    return " ".join(f"--conf {key}={value}" for key, value in conf.items())


class EmrServerlessPipes(PipesEMRServerlessClient):
    """Dagster's client, waiting without its dashboard calls (a URL in the log is all they
    add) and failing with EMR's own reason (``stateDetails``): the upstream loop logs it but
    raises a bare "job failed"."""

    def _wait_for_completion(self, context: Any, start_response: Any) -> Any:
        application_id, job_run_id = start_response["applicationId"], start_response["jobRunId"]
        while True:
            response = self.client.get_job_run(applicationId=application_id, jobRunId=job_run_id)
            run = response["jobRun"]
            if run["state"] == "SUCCESS":
                context.log.info(f"[pipes] EMR Serverless job run {job_run_id} succeeded")
                return response
            if run["state"] in EMR_FAILED:
                reason = run.get("stateDetails") or "no reason given"
                raise dg.Failure(
                    description=f"EMR Serverless job run {job_run_id} of application "
                    f"{application_id} ended {run['state']}: {reason}",
                    metadata={
                        "AWS EMR Serverless Job Run ID": job_run_id,
                        "state": run["state"],
                        "state_details": reason,
                    },
                )
            if run["state"] not in EMR_RUNNING:
                raise dg.Failure(
                    f"EMR Serverless job run {job_run_id}: unknown state {run['state']}"
                )
            time.sleep(self.poll_interval)


class EmrServerless(SparkSteps):
    """Steps as EMR Serverless job runs of ``spark_jobs/entry.py`` through Dagster Pipes'
    EMR Serverless client: the context goes in as driver environment variables, the
    metadata and check results come back from the driver's stdout in CloudWatch Logs."""

    application_id: str
    job_role_arn: str
    entry_point: str
    spark_submit_parameters: str
    log_group: str = "/aws/emr-serverless"
    log_uri: str | None = None
    timeout_minutes: int = 120
    region: str | None = None
    poll_interval_s: float = 10.0

    def start_job_run_params(
        self, context: dg.AssetExecutionContext, step: str, day: date, lake_root: str
    ) -> dict[str, Any]:
        """The StartJobRun request of a step."""
        return self._job_run_params(
            context,
            label=step,
            name=f"stride {step} {day.isoformat()}",
            arguments=_step_args(step, day, lake_root),
            tags={"stride-step": step, "stride-day": day.isoformat()},
        )

    def maintenance_job_run_params(
        self, context: dg.OpExecutionContext, table: str, path: str, retention_hours: int
    ) -> dict[str, Any]:
        """The StartJobRun request of a table's maintenance."""
        return self._job_run_params(
            context,
            label=f"maintain-{table}",
            name=f"stride maintain {table}",
            arguments=_maintain_args(table, path, retention_hours),
            tags={"stride-step": "maintain", "stride-table": table},
        )

    def _job_run_params(
        self,
        context: dg.AssetExecutionContext | dg.OpExecutionContext,
        *,
        label: str,
        name: str,
        arguments: list[str],
        tags: dict[str, str],
    ) -> dict[str, Any]:
        """The client token makes a retried request (not a retried step) start no second
        job run."""
        monitoring: dict[str, Any] = {
            "cloudWatchLoggingConfiguration": {"enabled": True, "logGroupName": self.log_group}
        }
        if self.log_uri:
            monitoring["s3MonitoringConfiguration"] = {"logUri": self.log_uri}
        return {
            "applicationId": self.application_id,
            "executionRoleArn": self.job_role_arn,
            "clientToken": f"{context.run_id}-{label}-{context.retry_number}"[:64],
            "name": name,
            "jobDriver": {
                "sparkSubmit": {
                    "entryPoint": self.entry_point,
                    "entryPointArguments": arguments,
                    "sparkSubmitParameters": self.spark_submit_parameters,
                }
            },
            "configurationOverrides": {"monitoringConfiguration": monitoring},
            "executionTimeoutMinutes": self.timeout_minutes,
            "tags": tags,
        }

    def pipes_client(self) -> PipesEMRServerlessClient:
        session = boto3.session.Session(region_name=self.region)
        return EmrServerlessPipes(
            client=session.client("emr-serverless"),
            message_reader=PipesCloudWatchMessageReader(client=session.client("logs")),
            poll_interval=self.poll_interval_s,
        )

    def run_step(
        self, context: dg.AssetExecutionContext, step: str, day: date, lake_root: str
    ) -> StepRun:
        invocation = self.pipes_client().run(
            context=context,
            start_job_run_params=self.start_job_run_params(context, step, day, lake_root),
        )
        return step_run_from_pipes(invocation, step, extra=dict(invocation.metadata))

    def maintain(
        self, context: dg.OpExecutionContext, table: str, path: str, retention_hours: int
    ) -> MaintenanceReport:
        invocation = self.pipes_client().run(
            context=context,
            start_job_run_params=self.maintenance_job_run_params(
                context, table, path, retention_hours
            ),
        )
        return maintenance_from_pipes(invocation, table)


class Lake(dg.ConfigurableResource):
    """The Delta lake root: a local folder or an ``s3://`` / ``s3a://`` URI, and how long
    lake maintenance keeps the files it removed from a table."""

    root: str
    vacuum_retention_hours: int = VACUUM_RETENTION_HOURS


class WarehouseTarget(dg.ConfigurableResource):
    """Where gold is loaded: the local PostgreSQL ``warehouse`` database or Redshift."""

    kind: str
    url: str
    iam_role: str = ""
    pseudonym_key: str

    def warehouse(self) -> Warehouse:
        if self.kind == "redshift":
            import psycopg  # Redshift speaks the PostgreSQL wire protocol for these statements

            return RedshiftWarehouse(
                connect=lambda: psycopg.connect(self.url), iam_role=self.iam_role
            )
        return PostgresWarehouse(self.url)


def spark_steps_for(settings: Settings) -> SparkSteps:
    """``STRIDE_SPARK_MODE``: Spark Connect, or EMR Serverless (its settings required)."""
    if settings.spark_mode == "connect":
        return SparkConnect(url=settings.spark_url)
    required = {
        "STRIDE_SPARK_EMR_APPLICATION_ID": settings.spark_emr_application_id,
        "STRIDE_SPARK_EMR_JOB_ROLE_ARN": settings.spark_emr_job_role_arn,
        "STRIDE_SPARK_EMR_ENTRY_POINT": settings.spark_emr_entry_point,
    }
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise RuntimeError(f"STRIDE_SPARK_MODE=emr-serverless needs {', '.join(missing)}")
    return EmrServerless(
        application_id=settings.spark_emr_application_id or "",
        job_role_arn=settings.spark_emr_job_role_arn or "",
        entry_point=settings.spark_emr_entry_point or "",
        spark_submit_parameters=emr_spark_submit_parameters(settings),
        log_group=settings.spark_emr_log_group,
        log_uri=settings.spark_emr_log_uri,
        timeout_minutes=settings.spark_emr_timeout_minutes,
        region=settings.lake_s3_region,
    )


def resources_for(settings: Settings) -> dict[str, Any]:
    """The resources of ``settings.env`` (prod requires its URLs and secrets to be set)."""
    if settings.env == "prod":
        missing = [
            name
            for name, value in (
                ("STRIDE_SPARK_REMOTE", settings.spark_remote or settings.spark_mode != "connect"),
                ("STRIDE_LAKE_URI", settings.lake_uri),
                ("STRIDE_WAREHOUSE_URL", settings.warehouse_url),
                ("STRIDE_REDSHIFT_IAM_ROLE", settings.redshift_iam_role),
            )
            if not value
        ]
        if missing and settings.warehouse_kind == "redshift":
            raise RuntimeError(f"production lakehouse needs {', '.join(missing)}")
    return {
        # the steps and the silver/gold maintenance, by mode (STRIDE_SPARK_MODE)
        "spark_steps": spark_steps_for(settings),
        "lake": Lake(
            root=settings.lake_root, vacuum_retention_hours=settings.lake_vacuum_retention_hours
        ),
        "warehouse": WarehouseTarget(
            kind=settings.warehouse_kind,
            url=settings.warehouse_db_url.replace("postgresql+psycopg://", "postgresql://", 1),
            iam_role=settings.redshift_iam_role or "",
            pseudonym_key=settings.pseudonym_key,
        ),
    }


def current_resources() -> dict[str, Any]:
    return resources_for(get_settings())
