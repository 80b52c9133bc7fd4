"""The EMR Serverless mode against moto's EMR Serverless and CloudWatch Logs (a
``ThreadedMotoServer`` behind the real boto3 clients Dagster Pipes' client uses): the
StartJobRun request the gold asset sends, its metadata and check results coming back
through Pipes from the driver's stdout in CloudWatch, and a FAILED run failing the asset
with EMR's reason.

moto accepts job runs without running them (they are ``SUCCESS`` at once): the test plays
the job's side by wrapping moto's StartJobRun. The driver part is the real one: a process
started with the driver environment the request carries, reporting through
``spark_jobs.entry.report`` to stdout, which goes into the run's CloudWatch stream as EMR
puts it there. Spark itself is covered by test_spark_batch_entry.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import boto3
import dagster as dg
import httpx
import pytest

from cli.stack import free_port
from core.platform.config import REPO_ROOT, Settings
from dagster_project.assets import LAKEHOUSE_ASSETS, gold_game_daily
from dagster_project.resources import Lake, WarehouseTarget, spark_steps_for

pytestmark = [pytest.mark.integration]

DAY = date(2026, 11, 21)
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's
LOG_GROUP = "/aws/emr-serverless/stride-test"
ENTRY = "s3://stride-test-artifacts/spark/abc123/entry.py"
BUNDLE = "s3://stride-test-artifacts/spark/abc123/stride_spark.zip"
LAKE = "s3://stride-test-lake/lake"
# The job's driver: the entry point's reporting with a fixed outcome (no Spark here).
DRIVER = """
from dagster_pipes import open_dagster_pipes
from spark_jobs.entry import report
from spark_jobs.steps import CheckOutcome, StepOutcome

two, zero = ({"raw_value": v, "type": "int"} for v in (2, 0))
preview = {"raw_value": "| x |", "type": "md"}
outcome = StepOutcome(
    metadata={"rows": two, "rows_in": two, "rows_out": two, "preview": preview},
    checks=[
        CheckOutcome("keys_not_null", True, {"rows_with_null_key": zero}),
        CheckOutcome("no_duplicates", True, {"duplicated_keys": zero}),
        CheckOutcome("row_count_sane", True, {"gold_rows": two, "silver_keys": two}),
    ],
)
with open_dagster_pipes() as pipes:
    report(pipes, outcome)
"""


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto on a free loopback port; every boto3 client of this process goes there."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    httpx.post(f"{endpoint}/moto-api/reset")  # moto's backends live in this process
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield endpoint
    finally:
        server.stop()


def _settings(application_id: str) -> Settings:
    return Settings(
        spark_mode="emr-serverless",
        spark_emr_application_id=application_id,
        spark_emr_job_role_arn=f"arn:aws:iam::{ACCOUNT}:role/stride-test-spark-job",
        spark_emr_entry_point=ENTRY,
        spark_emr_py_files=BUNDLE,
        spark_emr_log_group=LOG_GROUP,
        lake_s3_region=REGION,
    )


def _application() -> str:
    emr = boto3.client("emr-serverless", region_name=REGION)
    created = emr.create_application(
        name="stride-test-spark", releaseLabel="emr-7.9.0", type="SPARK"
    )
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName=LOG_GROUP)
    return str(created["applicationId"])


def _on_start_job_run(
    monkeypatch: pytest.MonkeyPatch, job: Callable[[Any], None]
) -> list[dict[str, Any]]:
    """Wrap moto's StartJobRun: record each request and play ``job`` on the new run."""
    from moto.emrserverless.models import EMRServerlessBackend

    requests: list[dict[str, Any]] = []
    start = EMRServerlessBackend.start_job_run

    def start_and_run(self: EMRServerlessBackend, **request: Any) -> Any:
        requests.append(request)
        run = start(self, **request)
        job(run)
        return run

    monkeypatch.setattr(EMRServerlessBackend, "start_job_run", start_and_run)
    return requests


def _driver_writes_to_cloudwatch(run: Any, command: list[str] | None = None) -> None:
    """The driver, started with the environment the request gives it; its stdout into the
    run's CloudWatch stream, as EMR Serverless writes it."""
    from moto.logs.models import logs_backends

    parameters = run.job_driver["sparkSubmit"]["sparkSubmitParameters"]
    driver_env = dict(re.findall(r"spark\.emr-serverless\.driverEnv\.(\w+)=(\S+)", parameters))
    env = {**os.environ, **driver_env, "PYTHONPATH": str(REPO_ROOT)}
    driver = subprocess.run(
        command or [sys.executable, "-c", DRIVER],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    logs = logs_backends[ACCOUNT][REGION]
    now = int(time.time() * 1000)
    for name, output in (("stdout", driver.stdout), ("stderr", driver.stderr or "(empty)")):
        stream = f"/applications/{run.application_id}/jobs/{run.id}/SPARK_DRIVER/{name}"
        logs.create_log_stream(LOG_GROUP, stream)
        events = [{"timestamp": now, "message": line} for line in output.splitlines() if line]
        logs.put_log_events(LOG_GROUP, stream, events)


# The maintenance job's driver: the entry point's reporting of a fixed pass.
MAINTENANCE_DRIVER = """
import sys
from dagster_pipes import open_dagster_pipes
from core.lake.bronze import MaintenanceReport
from spark_jobs.entry import report_maintenance

table = sys.argv[1]
with open_dagster_pipes() as pipes:
    report_maintenance(pipes, MaintenanceReport(
        table=table, exists=True, version_before=4, version_after=6, files_before=9,
        files_after=2, files_compacted=8, files_written=1, files_vacuumed=8, seconds=1.5,
    ))
"""


def _maintenance_driver(run: Any) -> None:
    """The maintenance job's driver for the table named in the request's arguments."""
    arguments = run.job_driver["sparkSubmit"]["entryPointArguments"]
    table = arguments[arguments.index("--table") + 1]
    _driver_writes_to_cloudwatch(run, [sys.executable, "-c", MAINTENANCE_DRIVER, table])


def _materialize(settings: Settings) -> dg.ExecuteInProcessResult:
    steps = spark_steps_for(settings)
    with dg.instance_for_test() as instance:
        return dg.materialize(
            LAKEHOUSE_ASSETS,
            selection=[gold_game_daily.key],
            partition_key=DAY.isoformat(),
            resources={
                "spark_steps": steps.model_copy(update={"poll_interval_s": 0.05}),
                "lake": Lake(root=LAKE),
                "warehouse": WarehouseTarget(kind="postgres", url="", pseudonym_key="unused"),
            },
            instance=instance,
            raise_on_error=False,
        )


def test_the_gold_asset_starts_a_job_run_and_gets_its_results_through_pipes(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    application_id = _application()
    requests = _on_start_job_run(monkeypatch, _driver_writes_to_cloudwatch)

    result = _materialize(_settings(application_id))

    assert result.success
    (request,) = requests
    assert request["application_id"] == application_id
    assert request["execution_role_arn"] == f"arn:aws:iam::{ACCOUNT}:role/stride-test-spark-job"
    driver = request["job_driver"]["sparkSubmit"]
    assert driver["entryPoint"] == ENTRY
    assert driver["entryPointArguments"] == [
        "gold_game_daily",
        "--day",
        DAY.isoformat(),
        "--lake",
        LAKE,
    ]
    parameters = driver["sparkSubmitParameters"]
    for conf in (
        "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.jars=/usr/share/aws/delta/lib/delta-spark.jar,",
        f"spark.submit.pyFiles={BUNDLE}",
        "spark.emr-serverless.driverEnv.DAGSTER_PIPES_CONTEXT=",
    ):
        assert f"--conf {conf}" in parameters
    logging = request["configuration_overrides"]["monitoringConfiguration"]
    assert logging["cloudWatchLoggingConfiguration"] == {"enabled": True, "logGroupName": LOG_GROUP}

    (materialization,) = result.asset_materializations_for_node("gold_game_daily")
    shown = {name: value.value for name, value in materialization.metadata.items()}
    assert shown["rows"] == 2 and shown["rows_in"] == 2 and shown["preview"] == "| x |"
    assert shown["AWS EMR Serverless Application ID"] == application_id
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert sorted(checks) == ["keys_not_null", "no_duplicates", "row_count_sane"]
    assert all(check.passed for check in checks.values())
    assert checks["row_count_sane"].metadata["silver_keys"].value == 2


def test_a_failed_job_run_fails_the_asset_with_emrs_reason(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = (
        "Job failed, please check complete logs in configured logging destination. ExitCode: 1."
    )

    def fail(run: Any) -> None:
        run.state, run.state_details = "FAILED", reason

    application_id = _application()
    _on_start_job_run(monkeypatch, fail)

    result = _materialize(_settings(application_id))

    assert not result.success
    (failure,) = result.get_step_failure_events()
    data = failure.step_failure_data
    assert data.user_failure_data is not None
    assert reason in (data.user_failure_data.description or "")
    assert "ended FAILED" in (data.user_failure_data.description or "")


def test_the_nightly_maintenance_runs_each_table_as_a_job_run(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the EMR mode the silver/gold maintenance needs no Spark Connect: each table's
    OPTIMIZE and VACUUM is a job run of the entry point, its report back through Pipes."""
    from dagster_project.maintenance import silver_gold_maintenance_job

    application_id = _application()
    requests = _on_start_job_run(monkeypatch, _maintenance_driver)
    steps = spark_steps_for(_settings(application_id))

    result = silver_gold_maintenance_job.execute_in_process(
        resources={
            "spark_steps": steps.model_copy(update={"poll_interval_s": 0.05}),
            "lake": Lake(root=LAKE, vacuum_retention_hours=168),
        },
        raise_on_error=False,
    )

    assert result.success
    tables = {
        "silver/wearable_samples",
        "silver/game_events",
        "silver/reward_commands",
        "gold/user_daily_health",
        "gold/game_daily",
    }
    assert len(requests) == len(tables)
    for request in requests:
        arguments = request["job_driver"]["sparkSubmit"]["entryPointArguments"]
        assert arguments[0] == "maintain"
        table = arguments[arguments.index("--table") + 1]
        assert table in tables
        assert arguments[arguments.index("--path") + 1] == f"{LAKE}/{table}"
        assert arguments[arguments.index("--retention-hours") + 1] == "168"
        # ours, beside the tags Dagster's client adds (its run and job)
        assert request["tags"]["stride-step"] == "maintain"
        assert request["tags"]["stride-table"] == table
    shown = {
        event.step_key: event.event_specific_data.metadata  # type: ignore[union-attr]
        for event in result.all_events
        if event.event_type_value == "STEP_OUTPUT"
    }
    assert len(shown) == len(tables)
    for metadata in shown.values():
        assert metadata["files_vacuumed"].value == 8 and metadata["files_after"].value == 2


def test_the_emr_mode_names_the_settings_it_misses() -> None:
    with pytest.raises(RuntimeError, match="STRIDE_SPARK_EMR_JOB_ROLE_ARN"):
        spark_steps_for(Settings(spark_mode="emr-serverless", spark_emr_application_id="x"))
