"""The important properties of the synthesized CloudFormation, per stage: encryption on,
nothing public, replication factor 3, Multi-AZ, private subnets for every task, the WAF's
rate rule, TLS, the signer key's spec, alarms, autoscaling, backups, OIDC."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from core.platform.config import Settings
from infra.config import WORKER_ROLES
from streams.heartbeat import ROLE_ENV

# Settings fields, plus the worker role the streams launcher reads itself.
SETTINGS_VARS = {"STRIDE_" + name.upper() for name in Settings.model_fields} | {ROLE_ENV}
STAGES = ("staging", "production")


def template(stages: dict, stage: str, stack: str) -> Template:
    return Template.from_stack(getattr(stages[stage], stack))


def resources(t: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {k: v.get("Properties", {}) for k, v in t.find_resources(kind).items()}


@pytest.fixture(params=STAGES)
def stage(request: pytest.FixtureRequest) -> str:
    return request.param


def test_database_is_multi_az_encrypted_private_and_backed_up(stages: dict, stage: str) -> None:
    t = template(stages, stage, "data")
    [db] = resources(t, "AWS::RDS::DBInstance").values()
    assert db["MultiAZ"] is True
    assert db["StorageEncrypted"] is True and "KmsKeyId" in db
    assert db["PubliclyAccessible"] is False
    assert db["BackupRetentionPeriod"] >= 7
    assert db["Engine"] == "postgres" and db["EngineVersion"].startswith("15.")
    assert db["DeletionProtection"] is (stage == "production")
    [params] = resources(t, "AWS::RDS::DBParameterGroup").values()
    assert params["Parameters"]["rds.force_ssl"] == "1"
    # Credentials are generated into Secrets Manager, never written in the template.
    assert "MasterUserPassword" in db and "resolve:secretsmanager" in json.dumps(
        db["MasterUserPassword"]
    )


def test_kafka_has_three_brokers_rf3_tls_iam_and_encryption(stages: dict, stage: str) -> None:
    t = template(stages, stage, "data")
    [cluster] = resources(t, "AWS::MSK::Cluster").values()
    assert cluster["NumberOfBrokerNodes"] == 3
    assert len(cluster["BrokerNodeGroupInfo"]["ClientSubnets"]) == 3
    transit = cluster["EncryptionInfo"]["EncryptionInTransit"]
    assert transit == {"ClientBroker": "TLS", "InCluster": True}
    assert "DataVolumeKMSKeyId" in cluster["EncryptionInfo"]["EncryptionAtRest"]
    auth = cluster["ClientAuthentication"]
    assert auth["Sasl"]["Iam"]["Enabled"] is True
    assert auth["Unauthenticated"]["Enabled"] is False
    assert cluster["BrokerNodeGroupInfo"]["ConnectivityInfo"]["PublicAccess"]["Type"] == "DISABLED"
    [configuration] = resources(t, "AWS::MSK::Configuration").values()
    properties = dict(line.split("=", 1) for line in configuration["ServerProperties"].splitlines())
    assert properties["default.replication.factor"] == "3"
    assert properties["min.insync.replicas"] == "2"
    assert properties["offsets.topic.replication.factor"] == "3"
    assert properties["auto.create.topics.enable"] == "false"


def test_topics_are_created_with_three_replicas(stages: dict, stage: str) -> None:
    t = template(stages, stage, "compute")
    envs = _container_envs(t)
    assert {env["STRIDE_KAFKA_REPLICATION_FACTOR"] for env in envs.values()} == {"3"}


def test_every_task_reaches_msk_over_tls_with_iam(stages: dict, stage: str) -> None:
    from core.platform.kafka_security import AiokafkaMskTokenProvider, aiokafka_options

    t = template(stages, stage, "compute")
    region = stages[stage].config.region
    envs = _container_envs(t)
    assert envs
    for family, env in envs.items():
        assert env["STRIDE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", family
        assert env["STRIDE_KAFKA_SASL_MECHANISM"] == "OAUTHBEARER", family
        assert env["STRIDE_KAFKA_MSK_IAM_REGION"] == region, family
    # The variables are a combination the settings accept, and map to the MSK IAM signer.
    env = next(iter(envs.values()))
    kafka = Settings(
        kafka_bootstrap="b-1.msk:9098",
        **{k[len("STRIDE_") :].lower(): v for k, v in env.items() if "_KAFKA_" in k},
    )
    options = aiokafka_options(kafka)
    assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_SSL", "OAUTHBEARER")
    assert isinstance(options["sasl_oauth_token_provider"], AiokafkaMskTokenProvider)
    assert options["sasl_oauth_token_provider"].tokens.region == region


def test_every_task_role_may_use_the_cluster_its_topics_and_groups(
    stages: dict, stage: str
) -> None:
    t = template(stages, stage, "compute")
    roles = {
        task["Family"]: task["TaskRoleArn"]["Fn::GetAtt"][0]
        for task in resources(t, "AWS::ECS::TaskDefinition").values()
    }
    granted: dict[str, set[str]] = {}
    for policy in resources(t, "AWS::IAM::Policy").values():
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            kafka_actions = {a for a in ([actions] if isinstance(actions, str) else actions)}
            if not any(a.startswith("kafka-cluster:") for a in kafka_actions):
                continue
            assert statement["Effect"] == "Allow"
            text = json.dumps(statement["Resource"])
            assert ":topic/" in text and ":group/" in text  # the cluster's, not "*"
            assert '"*"' not in text
            for role in policy["Roles"]:
                granted.setdefault(role["Ref"], set()).update(kafka_actions)
    needed = {
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeCluster",
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:CreateTopic",
        "kafka-cluster:ReadData",
        "kafka-cluster:WriteData",
        "kafka-cluster:WriteDataIdempotently",
        "kafka-cluster:DescribeGroup",
        "kafka-cluster:AlterGroup",
    }
    for family, role in roles.items():
        assert needed <= granted.get(role, set()), family


def test_every_bucket_is_encrypted_private_and_tls_only(stages: dict, stage: str) -> None:
    buckets: dict[str, dict] = {}
    policies: list[dict] = []
    for stack in ("data", "compute"):
        t = template(stages, stage, stack)
        buckets |= resources(t, "AWS::S3::Bucket")
        policies += resources(t, "AWS::S3::BucketPolicy").values()
    assert len(buckets) == 3  # lake, its access logs, the load balancer's logs
    for name, bucket in buckets.items():
        assert bucket["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, name
        assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"], name
        assert bucket["VersioningConfiguration"]["Status"] == "Enabled", name
    denies_plain_http = [
        s
        for p in policies
        for s in p["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(denies_plain_http) == len(buckets)
    lake = next(b for n, b in buckets.items() if n.startswith("Lake") and "Logs" not in n)
    rule = lake["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"


def test_warehouse_is_private_encrypted_and_tls_only(stages: dict, stage: str) -> None:
    t = template(stages, stage, "data")
    [workgroup] = resources(t, "AWS::RedshiftServerless::Workgroup").values()
    assert workgroup["PubliclyAccessible"] is False
    assert {"ParameterKey": "require_ssl", "ParameterValue": "true"} in workgroup[
        "ConfigParameters"
    ]
    [namespace] = resources(t, "AWS::RedshiftServerless::Namespace").values()
    assert "KmsKeyId" in namespace and namespace["ManageAdminPassword"] is True


def test_only_the_load_balancer_is_open_to_the_internet(stages: dict, stage: str) -> None:
    opened = []
    for stack in ("network", "data", "compute"):
        t = template(stages, stage, stack)
        for name, group in resources(t, "AWS::EC2::SecurityGroup").items():
            for rule in group.get("SecurityGroupIngress", []):
                if rule.get("CidrIp") == "0.0.0.0/0" or rule.get("CidrIpv6") == "::/0":
                    opened.append((name, rule["FromPort"]))
        for name, rule in resources(t, "AWS::EC2::SecurityGroupIngress").items():
            assert rule.get("CidrIp") != "0.0.0.0/0", name
    assert sorted(port for _, port in opened) == [80, 443]
    assert {name for name, _ in opened} == {next(n for n, _ in opened)}
    assert opened[0][0].startswith("LoadBalancerSg")


def test_every_task_runs_in_private_subnets_without_a_public_ip(stages: dict, stage: str) -> None:
    t = template(stages, stage, "compute")
    services = resources(t, "AWS::ECS::Service")
    assert len(services) >= 10
    for name, service in services.items():
        network = service["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED", name
        subnets = json.dumps(network["Subnets"])
        assert "appSubnet" in subnets and "public" not in subnets.lower(), name
        assert service["LaunchType"] == "FARGATE"
        assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"]["Rollback"] is True
    [emr] = resources(t, "AWS::EMRServerless::Application").values()
    assert "appSubnet" in json.dumps(emr["NetworkConfiguration"]["SubnetIds"])


def test_containers_run_as_the_image_user_with_settings_it_knows(stages: dict, stage: str) -> None:
    t = template(stages, stage, "compute")
    for family, task in resources(t, "AWS::ECS::TaskDefinition").items():
        for container in task["ContainerDefinitions"]:
            if container["Name"] == "cloudwatch-agent":
                continue
            assert container["User"] == "10001:10001", family
            assert container["ReadonlyRootFilesystem"] is True, family
            env = {e["Name"]: e["Value"] for e in container.get("Environment", [])}
            unknown = {k for k in env if k.startswith("STRIDE_")} - SETTINGS_VARS
            assert not unknown, f"{family} sets {unknown}, which Settings lacks"
            secret_names = {s["Name"] for s in container.get("Secrets", [])}
            assert {"STRIDE_DATABASE_URL", "STRIDE_SECRET_KEY"} <= secret_names, family
            for key in env:
                assert not re.search(r"PASSWORD|SECRET|PRIVATE", key), f"{family}: {key} in clear"
            assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def test_one_worker_service_per_role_scaling_on_its_consumer_lag(stages: dict, stage: str) -> None:
    t = template(stages, stage, "compute")
    envs = _container_envs(t)
    commands = _container_commands(t)
    roles = {
        env["STRIDE_STREAMS_ROLE"]: family
        for family, env in envs.items()
        if "STRIDE_STREAMS_ROLE" in env
    }
    assert set(roles) == set(WORKER_ROLES)
    for family in roles.values():
        assert commands[family] == [
            "python",
            "-m",
            "streams",
            "worker",
            "--without-web",
            "-l",
            "info",
        ]
    policies = resources(t, "AWS::ApplicationAutoScaling::ScalingPolicy")
    lag_alarms = [
        a
        for a in resources(t, "AWS::CloudWatch::Alarm").values()
        if a.get("MetricName") == "ConsumerLag" and a["Namespace"] == "Stride/Streams"
    ]
    groups = {
        d["Value"] for a in lag_alarms for d in a["Dimensions"] if d["Name"] == "ConsumerGroup"
    }
    assert groups == {
        "stride-streams",
        "stride-streams-lake",
        "stride-streams-metric-alerts",
        "stride-streams-battles",
    }
    step = [p for p in policies.values() if p["PolicyType"] == "StepScaling"]
    assert len(step) >= 2 * len(WORKER_ROLES)  # one up and one down policy per role


def test_api_scales_on_cpu_and_requests(stages: dict, stage: str) -> None:
    t = template(stages, stage, "compute")
    metrics = {
        p["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
            "PredefinedMetricType"
        ]
        for p in resources(t, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
        if p["PolicyType"] == "TargetTrackingScaling"
    }
    assert metrics == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}


def test_indexer_writer_dagster_and_migrate_are_deployed(stages: dict, stage: str) -> None:
    t = template(stages, stage, "compute")
    commands = _container_commands(t)
    by_family = {family.split(f"stride-{stage}-", 1)[1]: cmd for family, cmd in commands.items()}
    assert by_family["chain-indexer"] == ["python", "-m", "chain_indexer"]
    assert by_family["chain-writer"] == ["python", "-m", stages[stage].config.chain_writer_module]
    assert by_family["dagster-daemon"][:2] == ["dagster-daemon", "run"]
    assert by_family["dagster-webserver"][0] == "dagster-webserver"
    assert "stride db upgrade" in by_family["migrate"][-1]
    assert "ensure_topics" in by_family["migrate"][-1]
    assert by_family["exporter"] == ["python", "-m", "cli.exporter"]
    api = by_family["api"]
    assert api[:2] == ["uvicorn", "api.main:app"]
    # X-Forwarded-For trusted from the VPC's addresses only (the ALB), never from anywhere.
    assert api[api.index("--forwarded-allow-ips") + 1] == stages[stage].config.vpc_cidr
    desired = {
        s["ServiceName"]: s["DesiredCount"] for s in resources(t, "AWS::ECS::Service").values()
    }
    assert "migrate" not in desired and "dagster-run" not in desired  # one-shot tasks
    # The writer's slot runs no task until its module is in the image (cdk.json says when).
    assert desired["chain-writer"] == stages[stage].config.chain_writer_tasks == 0


def test_api_is_behind_tls_with_a_waf_rate_rule(stages: dict, stage: str) -> None:
    t = template(stages, stage, "compute")
    listeners = resources(t, "AWS::ElasticLoadBalancingV2::Listener")
    https = [listener for listener in listeners.values() if listener["Protocol"] == "HTTPS"]
    assert len(https) == 1 and https[0]["Port"] == 443 and https[0]["Certificates"]
    assert https[0]["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    http = [listener for listener in listeners.values() if listener["Protocol"] == "HTTP"]
    assert [a["Type"] for listener in http for a in listener["DefaultActions"]] == ["redirect"]
    [acl] = resources(t, "AWS::WAFv2::WebACL").values()
    assert acl["Scope"] == "REGIONAL"
    rate = [r for r in acl["Rules"] if "RateBasedStatement" in r["Statement"]]
    assert len(rate) == 1 and "Block" in rate[0]["Action"]
    assert rate[0]["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    assert rate[0]["Statement"]["RateBasedStatement"]["Limit"] == (
        stages[stage].config.waf_rate_limit_per_5min
    )
    t.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)
    t.resource_count_is("AWS::WAFv2::LoggingConfiguration", 1)
    [alb] = resources(t, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attributes = {a["Key"]: a["Value"] for a in alb["LoadBalancerAttributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["access_logs.s3.enabled"] == "true"


def test_chain_signer_key_is_secp256k1_and_only_the_writer_signs(stages: dict, stage: str) -> None:
    t = template(stages, stage, "compute")
    t.has_resource_properties(
        "AWS::KMS::Key", {"KeySpec": "ECC_SECG_P256K1", "KeyUsage": "SIGN_VERIFY"}
    )
    signers = [
        name
        for name, policy in resources(t, "AWS::IAM::Policy").items()
        if "kms:Sign" in json.dumps(policy["PolicyDocument"])
    ]
    assert len(signers) == 1 and signers[0].startswith("ChainWriterTask")


def test_data_key_rotates_and_logs_are_encrypted(stages: dict, stage: str) -> None:
    for stack in ("network", "data"):
        t = template(stages, stage, stack)
        t.has_resource_properties(
            "AWS::KMS::Key", {"EnableKeyRotation": True, "KeySpec": Match.absent()}
        )
    for stack in ("network", "data", "compute"):
        for name, group in resources(template(stages, stage, stack), "AWS::Logs::LogGroup").items():
            assert "KmsKeyId" in group and "RetentionInDays" in group, name


def test_alarms_cover_errors_latency_lag_and_the_stores(stages: dict, stage: str) -> None:
    t = template(stages, stage, "observability")
    alarms = resources(t, "AWS::CloudWatch::Alarm")
    descriptions = " ".join(a["AlarmDescription"] for a in alarms.values())
    for needle in (
        "5xx",
        "p99",
        "/health",
        "behind",
        "PostgreSQL CPU",
        "10 GB free",
        "replication factor 3",
        "offline",
        "disk",
    ):
        assert needle in descriptions, needle
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] and alarm["OKActions"], name
    t.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    [topic] = resources(t, "AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic


def test_backup_plan_covers_the_database_and_the_lake(stages: dict, stage: str) -> None:
    t = template(stages, stage, "backup")
    [plan] = resources(t, "AWS::Backup::BackupPlan").values()
    rules = {r["RuleName"] for r in plan["BackupPlan"]["BackupPlanRule"]}
    assert rules == {"daily", "weekly", "monthly"}
    [selection] = resources(t, "AWS::Backup::BackupSelection").values()
    selected = json.dumps(selection["BackupSelection"]["Resources"])
    assert "Database" in selected and "Lake" in selected
    [vault] = resources(t, "AWS::Backup::BackupVault").values()
    assert "EncryptionKeyArn" in vault


def test_github_deploys_through_oidc_limited_to_its_environment(stages: dict, stage: str) -> None:
    t = template(stages, stage, "delivery")
    [provider] = resources(t, "AWS::IAM::OIDCProvider").values()
    assert provider["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["ClientIdList"] == ["sts.amazonaws.com"]
    roles = {
        r["RoleName"]: r["AssumeRolePolicyDocument"]["Statement"]
        for r in resources(t, "AWS::IAM::Role").values()
        if "AssumeRoleWithWebIdentity" in json.dumps(r["AssumeRolePolicyDocument"])
    }
    repo = stages[stage].config.github_repository
    subjects = {
        f"stride-{stage}-github-deploy": f"repo:{repo}:environment:{stage}",
        f"stride-{stage}-github-diff": f"repo:{repo}:pull_request",
    }
    assert set(roles) == set(subjects)
    for name, [statement] in roles.items():
        assert statement["Condition"]["StringEquals"] == {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": subjects[name],
        }
    diff_policy = next(
        p for n, p in resources(t, "AWS::IAM::Policy").items() if n.startswith("DiffRole")
    )
    assert "lookup-role" in json.dumps(diff_policy) and "deploy-role" not in json.dumps(diff_policy)
    t.has_resource_properties(
        "AWS::ECR::Repository",
        {"ImageTagMutability": "IMMUTABLE", "ImageScanningConfiguration": {"ScanOnPush": True}},
    )
    t.resource_count_is("AWS::IAM::User", 0)
    t.resource_count_is("AWS::IAM::AccessKey", 0)


def test_the_writer_module_comes_from_context() -> None:
    from infra.app import INFRA_DIR, StrideStage, build_app

    staging = json.loads((INFRA_DIR / "cdk.json").read_text())["context"]["stride:staging"]
    app = build_app(
        {
            "stage": "staging",
            "stride:staging": {
                **staging,
                "chain_writer_module": "chain_writer.run",
                "chain_writer_tasks": 1,
            },
        }
    )
    [stage] = [c for c in app.node.children if isinstance(c, StrideStage)]
    compute = Template.from_stack(stage.compute)
    commands = _container_commands(compute)
    assert commands["stride-staging-chain-writer"] == ["python", "-m", "chain_writer.run"]
    compute.has_resource_properties(
        "AWS::ECS::Service", {"ServiceName": "chain-writer", "DesiredCount": 1}
    )


def _task_definitions(t: Template) -> dict[str, dict]:
    return {
        task["Family"]: next(c for c in task["ContainerDefinitions"] if c["Name"] == "app")
        for task in resources(t, "AWS::ECS::TaskDefinition").values()
    }


def _container_envs(t: Template) -> dict[str, dict[str, str]]:
    return {
        family: {e["Name"]: e["Value"] for e in c.get("Environment", [])}
        for family, c in _task_definitions(t).items()
    }


def _container_commands(t: Template) -> dict[str, list[str] | None]:
    return {family: c.get("Command") for family, c in _task_definitions(t).items()}
