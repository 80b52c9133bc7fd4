"""The sweeper runs as its own service, and the processes that touch game content may do
what they do there and no more: the API writes, serves and assembles content under the
lake's ``raw/content/``; the sweeper only reads and deletes abandoned upload parts."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.unit.infra.test_spark_and_dagster_access import _actions, _statements, _tasks
from tests.unit.infra.test_stacks import STAGES, resources, template


def _object_grants(t: Any, family: str) -> dict[str, set[str]]:
    """S3 actions of the task's role on objects, by key pattern (``raw/content/*``...)."""
    role = _tasks(t)[family]["TaskRoleArn"]["Fn::GetAtt"][0]
    grants: dict[str, set[str]] = {}
    for statement in _statements(t, {"Ref": role}):
        s3 = {a for a in _actions(statement) if a.startswith("s3:")}
        targets = statement["Resource"]
        for target in targets if isinstance(targets, list) else [targets]:
            # an object ARN is Fn::Join of the bucket's ARN and "/<pattern>"
            for pattern in re.findall(r'"/([^"]+)"', json.dumps(target)):
                grants.setdefault(pattern, set()).update(s3)
    return {k: v for k, v in grants.items() if v}


def test_the_sweeper_is_a_service_of_every_stage_with_the_sweep_command(stages: dict) -> None:
    for stage in STAGES:
        t = template(stages, stage, "compute")
        services = {s["ServiceName"] for s in resources(t, "AWS::ECS::Service").values()}
        assert "sweeper" in services, stage
        (app,) = [c for c in _tasks(t)["sweeper"]["ContainerDefinitions"] if c["Name"] == "app"]
        assert app["Command"] == ["python", "-m", "cli.main", "sweep"]


def test_the_sweeper_may_only_read_and_delete_upload_parts(stages: dict) -> None:
    grants = _object_grants(template(stages, "production", "compute"), "sweeper")
    assert set(grants) == {"raw/content/_uploads/*"}, grants
    actions = grants["raw/content/_uploads/*"]
    assert "s3:DeleteObject*" in actions
    assert not any(a.startswith("s3:Put") for a in actions)


def test_the_api_may_write_and_serve_content(stages: dict) -> None:
    grants = _object_grants(template(stages, "production", "compute"), "api")
    assert {"s3:GetObject*", "s3:PutObject"} <= grants.get("raw/content/*", set()), grants
    assert "s3:DeleteObject*" in grants.get("raw/content/_uploads/*", set()), grants


def test_the_chain_writer_signs_with_the_stacks_kms_key(stages: dict) -> None:
    """The writer's own settings (STRIDE_WRITER_*), so it finds the key the stack made."""
    t = template(stages, "production", "compute")
    (app,) = [c for c in _tasks(t)["chain-writer"]["ContainerDefinitions"] if c["Name"] == "app"]
    env = {e["Name"]: e["Value"] for e in app.get("Environment", [])}
    (key,) = t.find_resources("AWS::KMS::Key")
    assert env["STRIDE_WRITER_SIGNER"] == "kms"
    assert env["STRIDE_WRITER_KMS_KEY_ID"] == {"Ref": key}
    assert env["STRIDE_WRITER_KMS_REGION"]
