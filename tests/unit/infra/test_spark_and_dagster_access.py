"""Spark on EMR Serverless as the Dagster tasks use it (settings, the run task's grants, the
jobs' code as assets) and the way into the Dagster UI (an SSM port forward, nothing open);
every image pinned."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

from infra.spark_bundle import build_bundle
from tests.unit.infra.test_stacks import STAGES, resources, template

DAGSTER = ("dagster-run", "dagster-webserver", "dagster-daemon")


def _tasks(t: Template) -> dict[str, dict[str, Any]]:
    return {
        task["Family"].split("-", 2)[-1]: task
        for task in resources(t, "AWS::ECS::TaskDefinition").values()
    }


def _env(task: dict[str, Any]) -> dict[str, Any]:
    (app,) = [c for c in task["ContainerDefinitions"] if c["Name"] == "app"]
    return {e["Name"]: e["Value"] for e in app.get("Environment", [])}


def _statements(t: Template, role_ref: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of the policies attached to the role ``role_ref`` points to."""
    found = []
    for policy in resources(t, "AWS::IAM::Policy").values():
        if role_ref in policy["Roles"]:
            found += policy["PolicyDocument"]["Statement"]
    return found


def _actions(statement: dict[str, Any]) -> set[str]:
    actions = statement["Action"]
    return {actions} if isinstance(actions, str) else set(actions)


def test_dagster_tasks_run_the_steps_on_emr_serverless(stages: dict) -> None:
    for stage in STAGES:
        t = template(stages, stage, "compute")
        tasks = _tasks(t)
        (application,) = t.find_resources("AWS::EMRServerless::Application")
        for name in DAGSTER:
            env = _env(tasks[name])
            assert env["STRIDE_SPARK_MODE"] == "emr-serverless", name
            assert env["STRIDE_SPARK_EMR_APPLICATION_ID"] == {
                "Fn::GetAtt": [application, "ApplicationId"]
            }
            for key in ("JOB_ROLE_ARN", "ENTRY_POINT", "PY_FILES", "LOG_GROUP"):
                assert env[f"STRIDE_SPARK_EMR_{key}"], (name, key)
            # the entry point and the bundle are the assets cdk deploy uploads
            assert json.dumps(env["STRIDE_SPARK_EMR_ENTRY_POINT"]).count(".py") == 1
            assert ".zip" in json.dumps(env["STRIDE_SPARK_EMR_PY_FILES"])


def test_only_the_run_task_starts_job_runs_of_the_application(stages: dict) -> None:
    t = template(stages, "production", "compute")
    (application,) = t.find_resources("AWS::EMRServerless::Application")
    (job_role,) = [
        name
        for name, role in resources(t, "AWS::IAM::Role").items()
        if "emr-serverless" in json.dumps(role["AssumeRolePolicyDocument"])
    ]
    starters = {}
    for family, task in _tasks(t).items():
        role = task["TaskRoleArn"]["Fn::GetAtt"][0]
        statements = _statements(t, {"Ref": role})
        emr = [s for s in statements if any(a.startswith("emr-serverless:") for a in _actions(s))]
        if emr:
            starters[family] = statements
            for statement in emr:  # this application and its job runs only
                assert application in json.dumps(statement["Resource"]), family
    assert set(starters) == {"dagster-run"}
    statements = starters["dagster-run"]
    granted = set().union(*(_actions(s) for s in statements))
    assert {
        "emr-serverless:StartJobRun",
        "emr-serverless:GetJobRun",
        "emr-serverless:CancelJobRun",
        "iam:PassRole",
        "logs:GetLogEvents",
    } <= granted
    (pass_role,) = [s for s in statements if "iam:PassRole" in _actions(s)]
    assert pass_role["Resource"] == {"Fn::GetAtt": [job_role, "Arn"]}
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}
    }


def test_the_code_bundle_holds_the_jobs_and_is_reproducible(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    first, second = build_bundle(tmp_path / "a"), build_bundle(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    names = set(zipfile.ZipFile(first).namelist())
    assert {"spark_jobs/entry.py", "spark_jobs/steps.py", "core/lake/bronze.py"} <= names
    assert "dagster_pipes/__init__.py" in names


def test_the_dagster_ui_is_reachable_only_through_an_ssm_port_forward(stages: dict) -> None:
    for stage in STAGES:
        t = template(stages, stage, "compute")
        services = resources(t, "AWS::ECS::Service")
        executable = {s["ServiceName"] for s in services.values() if s.get("EnableExecuteCommand")}
        assert executable == {"dagster-webserver"}
        web = _tasks(t)["dagster-webserver"]
        (app,) = [c for c in web["ContainerDefinitions"] if c["Name"] == "app"]
        assert app["Command"][:3] == ["dagster-webserver", "-h", "127.0.0.1"]
        assert not app.get("PortMappings")  # nothing in the VPC reaches it either
        assert app["ReadonlyRootFilesystem"] is True
        (web_service,) = [s for s in services.values() if s["ServiceName"] == "dagster-webserver"]
        assert "LoadBalancers" not in web_service
        # no listener rule or target group sends anything to port 3000
        for group in resources(t, "AWS::ElasticLoadBalancingV2::TargetGroup").values():
            assert group.get("Port") != 3000


def test_every_public_image_is_pinned(stages: dict) -> None:
    """Images from a public registry (the CloudWatch agent) carry a version tag; the app's
    own image is the deploy's commit (``image_tag``)."""
    public = 0
    for stage in STAGES:
        t = template(stages, stage, "compute")
        for family, task in _tasks(t).items():
            for container in task["ContainerDefinitions"]:
                if isinstance(container["Image"], str):
                    public += 1
                    tag = container["Image"].rsplit(":", 1)[-1]
                    assert tag != "latest" and tag[0].isdigit(), (family, container["Image"])
    assert public
