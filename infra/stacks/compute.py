"""Everything that runs the image: ECS Fargate services for the API (behind an ALB with TLS
and a WAF rate-based rule), one per Faust worker role, the platform exporter (which turns
Kafka consumer lag into the CloudWatch metric the workers scale on), the sampler, the chain
indexer and writer, Dagster (webserver on loopback behind ECS Exec, daemon, runs through
``EcsRunLauncher`` that start the Spark steps on EMR Serverless), the one-shot migrate task,
EMR Serverless for Spark with the jobs' code as file assets and the chain signer's KMS key.

Every task runs in the private subnets without a public IP, as the image's non-root user,
with a read-only root filesystem where the process writes nothing but ``/tmp``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_emrserverless as emrserverless
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.config import WORKER_ROLES, StageConfig
from infra.spark_bundle import ENTRY_POINT, build_bundle
from infra.stacks.data import APP_SECRET_KEYS, DataStack

API_PORT = 8000
# Inside a task's own network namespace; the security groups decide who reaches it.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
DAGSTER_PORT = 3000
EXPORTER_PORT = 9103  # core/platform/config.py MonitoringSettings.exporter_port
LAG_NAMESPACE = "Stride/Streams"
LAG_METRIC = "ConsumerLag"
STREAMS_APP_ID = "stride-streams"  # core/platform/config.py StreamsSettings.streams_app_id
# The consumer group of each worker role (streams/heartbeat.py app_id_of).
CONSUMER_GROUPS = {
    "scoring": STREAMS_APP_ID,
    "lake-sink": f"{STREAMS_APP_ID}-lake",
    "metric-alerts": f"{STREAMS_APP_ID}-metric-alerts",
    "battles": f"{STREAMS_APP_ID}-battles",
}
# The variable each key of the app secret becomes; every process gets the common ones.
SECRET_ENV = {key: f"STRIDE_{key.upper()}" for key in (*APP_SECRET_KEYS, "secret_key")}
SECRET_ENV["dagster_postgres_url"] = "DAGSTER_POSTGRES_URL"  # read by infra/dagster/dagster.yaml
_COMMON_SECRETS = ("database_url", "kafka_bootstrap", "secret_key")
# The chain writer's signing key id: its setting (core/platform/config.py WriterSettings).
SIGNER_KEY_ENV = "STRIDE_WRITER_KMS_KEY_ID"
# Pinned (not `latest`): the tag the CloudWatch agent operator's versions.txt names as its
# stable release; bump it deliberately (docs/deploy.md).
CLOUDWATCH_AGENT_IMAGE = "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.300045.0b810"


@dataclass(frozen=True)
class ProcessSpec:
    """One ECS service (or task) of the image: its command, size and extra settings."""

    name: str
    command: Sequence[str]
    cpu: int = 512
    memory_mib: int = 1024
    desired: int = 1
    environment: Mapping[str, str] | None = None
    secrets: Sequence[str] = ()


def topics_command(partitions: int) -> list[str]:
    """The migrate task: the schema to head, then every topic with three replicas."""
    create_topics = (
        "from core.platform.config import get_settings as g; "
        "from core.platform.topics import ensure_topics as e; s = g(); "
        "print(e(s))"
    )
    return ["sh", "-c", f'stride db upgrade && exec python -c "{create_topics}"']


def worker_processes(config: StageConfig) -> list[ProcessSpec]:
    """One Faust worker service per role of streams/__main__.py."""
    return [
        ProcessSpec(
            name=f"worker-{role}",
            command=["python", "-m", "streams", "worker", "--without-web", "-l", "info"],
            cpu=1024,
            memory_mib=2048,
            desired=1,
            environment={"STRIDE_STREAMS_ROLE": role},
            secrets=("warehouse_pseudonym_key",) if role == "lake-sink" else (),
        )
        for role in WORKER_ROLES
    ]


class ComputeStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        config: StageConfig,
        vpc: ec2.IVpc,
        data: DataStack,
        repository: ecr.IRepository,
        load_balancer_sg: ec2.ISecurityGroup,
        **kwargs: object,
    ):
        super().__init__(scope, cid, **kwargs)  # type: ignore[arg-type]
        self.load_balancer_sg = load_balancer_sg
        self.config = config
        self.data = data
        self.vpc = vpc
        self.image = ecs.ContainerImage.from_ecr_repository(repository, tag=config.image_tag)
        self.private = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            cluster_name=f"stride-{config.stage}",
            container_insights_v2=ecs.ContainerInsights.ENHANCED,
        )
        self.logs = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/stride/{config.stage}",
            retention=logs.RetentionDays.ONE_MONTH,
            encryption_key=data.key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # Imported by ARN, without its key: reading it then grants on the task roles only
        # (a grant through the data stack's key policy would make the stacks depend on each
        # other); each execution role gets kms:Decrypt on the key in _task_definition.
        self.app_secret = secretsmanager.Secret.from_secret_complete_arn(
            self, "AppSecret", data.app_secret.secret_arn
        )
        self.services: dict[str, ecs.FargateService] = {}
        self.task_definitions: dict[str, ecs.FargateTaskDefinition] = {}

        self.signer_key = kms.Key(
            self,
            "ChainSignerKey",
            alias=f"alias/stride-{config.stage}-chain-signer",
            description="The chain writer's transaction signing key (secp256k1, never leaves KMS)",
            key_spec=kms.KeySpec.ECC_SECG_P256K1,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

        self._api()
        for spec in worker_processes(config):
            service = self._service(spec)
            self._scale_on_lag(
                spec.name, service, CONSUMER_GROUPS[spec.name.removeprefix("worker-")]
            )
        self._exporter()
        self._service(ProcessSpec("sampler", ["python", "-m", "core.metrics.sampler"]))
        # holds, gifts, uploads and refunds past their time (cli/sweeper.py): PostgreSQL and
        # the content store only; two tasks during a deploy are safe (SKIP LOCKED batches)
        self._service(
            ProcessSpec("sweeper", ["python", "-m", "cli.main", "sweep"], cpu=256, memory_mib=512)
        )
        self._service(
            ProcessSpec(
                "chain-indexer",
                ["python", "-m", "chain_indexer"],
                secrets=("indexer_chains",),
            )
        )
        writer = self._service(
            ProcessSpec(
                "chain-writer",
                ["python", "-m", config.chain_writer_module],
                desired=config.chain_writer_tasks,
                secrets=("evm_rpc_url",),
                environment={
                    "STRIDE_WRITER_SIGNER": "kms",
                    SIGNER_KEY_ENV: self.signer_key.key_id,
                    "STRIDE_WRITER_KMS_REGION": config.region,
                },
            )
        )
        self.signer_key.grant(writer.task_definition.task_role, "kms:Sign", "kms:GetPublicKey")
        self._emr_serverless()
        self._dagster()
        self.migrate = self._task_definition(
            ProcessSpec(
                "migrate", topics_command(config.kafka_partitions), cpu=512, memory_mib=1024
            )
        )

        cdk.CfnOutput(self, "ClusterName", value=self.cluster.cluster_name)
        cdk.CfnOutput(self, "MigrateTaskDefinition", value=self.migrate.task_definition_arn)
        cdk.CfnOutput(self, "ChainSignerKeyId", value=self.signer_key.key_id)

    # ---- building blocks -------------------------------------------------------------------

    def _private_subnet_ids(self) -> list[str]:
        return self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids

    def process_environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The STRIDE_* settings every process shares (core/platform/config.py Settings)."""
        env = {
            "STRIDE_ENV": "prod",
            "STRIDE_STATE_DIR": "/tmp/stride",  # noqa: S108 - the task's only writable folder
            "STRIDE_LOG_FORMAT": "json",
            "STRIDE_METRICS_HOST": "127.0.0.1",
            "STRIDE_KAFKA_REPLICATION_FACTOR": "3",
            "STRIDE_KAFKA_TOPIC_PARTITIONS": str(self.config.kafka_partitions),
            # MSK accepts only IAM over TLS (data.py): every client signs an OAUTHBEARER token
            # with the task role's credentials (core/platform/kafka_security.py).
            "STRIDE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "STRIDE_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
            "STRIDE_KAFKA_MSK_IAM_REGION": self.config.region,
            "STRIDE_LAKE_URI": f"s3://{self.data.lake.bucket_name}/lake",
            "STRIDE_LAKE_S3_REGION": self.config.region,
            "STRIDE_WAREHOUSE_KIND": "redshift",
            "STRIDE_REDSHIFT_IAM_ROLE": self.data.warehouse_copy_role.role_arn,
        }
        if self.config.spark_remote:  # a Spark Connect server for Dagster (docs/deploy.md)
            env["STRIDE_SPARK_REMOTE"] = self.config.spark_remote
        return {**env, **(extra or {})}

    def secrets(self, keys: Sequence[str]) -> dict[str, ecs.Secret]:
        """The app secret's JSON keys as the variables of SECRET_ENV."""
        wanted = dict.fromkeys([*_COMMON_SECRETS, *keys])
        unknown = sorted(set(wanted) - set(SECRET_ENV))
        if unknown:
            raise ValueError(f"not keys of the app secret: {unknown}")
        return {
            SECRET_ENV[key]: ecs.Secret.from_secrets_manager(self.app_secret, key) for key in wanted
        }

    def _task_definition(self, spec: ProcessSpec) -> ecs.FargateTaskDefinition:
        task = ecs.FargateTaskDefinition(
            self,
            f"{_cid(spec.name)}Task",
            family=f"stride-{self.config.stage}-{spec.name}",
            cpu=spec.cpu,
            memory_limit_mib=spec.memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        task.add_volume(name="tmp")
        container = task.add_container(
            "app",
            container_name="app",
            image=self.image,
            command=list(spec.command) or None,
            environment=self.process_environment(spec.environment),
            secrets=self.secrets(spec.secrets),
            user="10001:10001",  # the image's `stride` user
            readonly_root_filesystem=True,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=spec.name, log_group=self.logs),
            stop_timeout=cdk.Duration.seconds(30),
        )
        container.add_mount_points(
            ecs.MountPoint(container_path="/tmp", source_volume="tmp", read_only=False)  # noqa: S108
        )
        task.obtain_execution_role().add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[self.data.key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{self.config.region}.amazonaws.com"
                    }
                },
            )
        )
        self._grant_data(task.task_role, spec.name)
        self.task_definitions[spec.name] = task
        return task

    def _service(
        self, spec: ProcessSpec, *, execute_command: bool = False, **kwargs: object
    ) -> ecs.FargateService:
        task = self._task_definition(spec)
        service = ecs.FargateService(
            self,
            _cid(spec.name),
            service_name=spec.name,
            cluster=self.cluster,
            task_definition=task,
            desired_count=0 if self.config.paused else spec.desired,
            assign_public_ip=False,
            vpc_subnets=self.private,
            security_groups=[self.data.clients],
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            enable_execute_command=execute_command,
            min_healthy_percent=100,
            **kwargs,  # type: ignore[arg-type]
        )
        self.services[spec.name] = service
        return service

    def _grant_data(self, role: iam.IRole, name: str) -> None:
        """Kafka over IAM for every process; the lake for those that read or write it."""
        cluster_arn = self.data.kafka.attr_arn
        # Topic and group ARNs share the cluster ARN's name/uuid tail.
        tail = cdk.Fn.select(1, cdk.Fn.split(":cluster/", cluster_arn))
        prefix = f"arn:{cdk.Aws.PARTITION}:kafka:{self.config.region}:{cdk.Aws.ACCOUNT_ID}"
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "kafka-cluster:Connect",
                    "kafka-cluster:DescribeCluster",
                    "kafka-cluster:DescribeTopic",
                    "kafka-cluster:CreateTopic",
                    "kafka-cluster:ReadData",
                    "kafka-cluster:WriteData",
                    # The API's producer is idempotent (api/kafka.py): MSK checks this too.
                    "kafka-cluster:WriteDataIdempotently",
                    "kafka-cluster:DescribeGroup",
                    "kafka-cluster:AlterGroup",
                ],
                resources=[
                    cluster_arn,
                    f"{prefix}:topic/{tail}/*",
                    f"{prefix}:group/{tail}/*",
                ],
            )
        )
        if name in ("worker-lake-sink", "dagster-daemon", "dagster-run", "dagster-webserver"):
            self.data.lake.grant_read_write(role)
        elif name in ("api",):
            self.data.lake.grant_put(role, "raw/*")  # wearable uploads' raw zone
            # game content (STRIDE_CONTENT_STORAGE_URI's default: the lake's raw/content):
            # versions written and served, tus parts assembled and removed
            self.data.lake.grant_read_write(role, "raw/content/*")
            self.data.lake.grant_delete(role, "raw/content/_uploads/*")
        elif name in ("sweeper",):
            # the uploads sweep deletes the parts of abandoned tus uploads
            self.data.lake.grant_read(role, "raw/content/_uploads/*")
            self.data.lake.grant_delete(role, "raw/content/_uploads/*")

    def _scale_on_lag(self, name: str, service: ecs.FargateService, group: str) -> None:
        """More workers while the group's lag (summed over its partitions) is high; never
        more than the topic's partitions, since a consumer beyond them would sit idle."""
        lag = cloudwatch.Metric(
            namespace=LAG_NAMESPACE,
            metric_name=LAG_METRIC,
            dimensions_map={"Stage": self.config.stage, "ConsumerGroup": group},
            statistic="Sum",
            period=cdk.Duration.minutes(1),
        )
        if self.config.paused:
            return
        scaling = service.auto_scale_task_count(
            min_capacity=1,
            max_capacity=min(self.config.worker_max_tasks, self.config.kafka_partitions),
        )
        target = self.config.worker_lag_target
        scaling.scale_on_metric(
            f"{_cid(name)}LagScaling",
            metric=lag,
            scaling_steps=[
                appscaling.ScalingInterval(upper=target // 10, change=-1),
                appscaling.ScalingInterval(lower=target, change=+1),
                appscaling.ScalingInterval(lower=target * 5, change=+3),
            ],
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=cdk.Duration.minutes(2),
        )

    # ---- the API: ALB (TLS) + WAF ------------------------------------------------------

    def _api(self) -> None:
        config = self.config
        alb_sg = self.load_balancer_sg
        alb_logs = s3.Bucket(
            self,
            "LoadBalancerLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # ALB log delivery cannot use KMS keys
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(90))],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.alb = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=self.vpc,
            internet_facing=True,
            security_group=alb_sg,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            drop_invalid_header_fields=True,
            deletion_protection=config.deletion_protection,
        )
        self.alb.log_access_logs(alb_logs, prefix="api")
        certificate = acm.Certificate(
            self,
            "ApiCertificate",
            domain_name=config.api_domain,
            validation=acm.CertificateValidation.from_dns(),  # DNS record added by the operator
        )
        self.alb.add_redirect(source_port=80, target_port=443)
        https = self.alb.add_listener(
            "Https",
            port=443,
            certificates=[certificate],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            open=False,  # the security group above already admits 443
        )
        api = self._service(
            ProcessSpec(
                "api",
                # The ALB appends the client's address to X-Forwarded-For: trusting only the
                # VPC's addresses makes uvicorn take the rightmost one the ALB wrote, never a
                # value the client sent. Keep-alive above the ALB's 60 s idle timeout.
                [
                    "uvicorn",
                    "api.main:app",
                    "--host",
                    ALL_INTERFACES,
                    "--port",
                    str(API_PORT),
                    "--workers",
                    "2",
                    "--no-access-log",
                    "--proxy-headers",
                    "--forwarded-allow-ips",
                    config.vpc_cidr,
                    "--timeout-keep-alive",
                    "65",
                ],
                cpu=1024,
                memory_mib=2048,
                desired=config.api_min_tasks,
                environment={"STRIDE_API_WORKERS": "2"},  # what /metrics sums over
                secrets=("readonly_database_url",),
            ),
            health_check_grace_period=cdk.Duration.seconds(60),
        )
        container = api.task_definition.default_container
        assert container is not None
        container.add_port_mappings(ecs.PortMapping(container_port=API_PORT))
        self.api_targets = https.add_targets(
            "Api",
            port=API_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[api],
            health_check=elbv2.HealthCheck(
                path="/health", healthy_http_codes="200", interval=cdk.Duration.seconds(15)
            ),
            deregistration_delay=cdk.Duration.seconds(30),
        )
        self._waf()
        if config.paused:
            return
        scaling = api.auto_scale_task_count(
            min_capacity=config.api_min_tasks, max_capacity=config.api_max_tasks
        )
        scaling.scale_on_cpu_utilization("ApiCpu", target_utilization_percent=60)
        scaling.scale_on_request_count(
            "ApiRequests", requests_per_target=2000, target_group=self.api_targets
        )

    def _waf(self) -> None:
        def managed(name: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=name
                    )
                ),
                visibility_config=_visibility(name),
            )

        self.web_acl = wafv2.CfnWebACL(
            self,
            "ApiWebAcl",
            name=f"stride-{self.config.stage}-api",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility("stride-api"),
            rules=[
                # Per client address over 5 minutes, before the app's own per-key quotas.
                wafv2.CfnWebACL.RuleProperty(
                    name="rate-per-ip",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=self.config.waf_rate_limit_per_5min,
                            aggregate_key_type="IP",
                        )
                    ),
                    visibility_config=_visibility("rate-per-ip"),
                ),
                managed("AWSManagedRulesCommonRuleSet", 1),
                managed("AWSManagedRulesKnownBadInputsRuleSet", 2),
                managed("AWSManagedRulesAmazonIpReputationList", 3),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self,
            "ApiWebAclAssociation",
            resource_arn=self.alb.load_balancer_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )
        waf_logs = logs.LogGroup(
            self,
            "WafLogs",
            log_group_name=f"aws-waf-logs-stride-{self.config.stage}",  # the name WAF requires
            retention=logs.RetentionDays.THREE_MONTHS,
            encryption_key=self.data.key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        wafv2.CfnLoggingConfiguration(
            self,
            "ApiWebAclLogging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[waf_logs.log_group_arn],
        )

    # ---- the lag metric ------------------------------------------------------------------

    def _exporter(self) -> None:
        """The platform exporter (cli/exporter.py) with a CloudWatch agent beside it: the
        agent scrapes ``stride_kafka_consumer_lag`` on loopback and publishes it as
        ``Stride/Streams ConsumerLag`` per group (embedded metric format), which the worker
        services scale on."""
        service = self._service(ProcessSpec("exporter", ["python", "-m", "cli.exporter"]))
        task = service.task_definition
        scrape = {
            "global": {"scrape_interval": "30s", "scrape_timeout": "10s"},
            "scrape_configs": [
                {
                    "job_name": "stride-exporter",
                    "static_configs": [
                        {
                            "targets": [f"127.0.0.1:{EXPORTER_PORT}"],
                            "labels": {"Stage": self.config.stage},
                        }
                    ],
                    # The dimension the worker services' scaling and the alarms name.
                    "metric_relabel_configs": [
                        {"source_labels": ["group"], "target_label": "ConsumerGroup"}
                    ],
                }
            ],
        }
        agent = {
            "logs": {
                "metrics_collected": {
                    "prometheus": {
                        "prometheus_config_path": "env:PROMETHEUS_CONFIG_CONTENT",
                        "log_group_name": f"/stride/{self.config.stage}/metrics",
                        "emf_processor": {
                            "metric_namespace": LAG_NAMESPACE,
                            "metric_unit": {"stride_kafka_consumer_lag": "Count"},
                            "metric_declaration": [
                                {
                                    "source_labels": ["job"],
                                    "label_matcher": "^stride-exporter$",
                                    "dimensions": [["Stage", "ConsumerGroup"]],
                                    "metric_selectors": ["^stride_kafka_consumer_lag$"],
                                }
                            ],
                        },
                    }
                },
            }
        }
        task.add_container(
            "cloudwatch-agent",
            container_name="cloudwatch-agent",
            image=ecs.ContainerImage.from_registry(CLOUDWATCH_AGENT_IMAGE),
            essential=True,
            environment={
                "CW_CONFIG_CONTENT": json.dumps(agent),
                "PROMETHEUS_CONFIG_CONTENT": json.dumps(scrape),
            },
            readonly_root_filesystem=False,  # the agent writes its state under /opt
            logging=ecs.LogDrivers.aws_logs(stream_prefix="cloudwatch-agent", log_group=self.logs),
        )
        task.task_role.add_managed_policy(
            iam.ManagedPolicy.from_aws_managed_policy_name("CloudWatchAgentServerPolicy")
        )

    # ---- Dagster -------------------------------------------------------------------------

    def _dagster(self) -> None:
        """Webserver and daemon as services; each run as its own task (``EcsRunLauncher``,
        configured by infra/dagster/dagster.yaml in the image, DAGSTER_HOME)."""
        spark_env = self.spark_environment()
        run = self._task_definition(
            ProcessSpec(
                "dagster-run",
                ["dagster", "api", "execute_run"],  # EcsRunLauncher overrides the command
                cpu=1024,
                memory_mib=4096,
                environment=spark_env,
                secrets=("warehouse_url", "warehouse_pseudonym_key", "dagster_postgres_url"),
            )
        )
        self._grant_spark_job_runs(run.task_role)
        # Webserver and daemon load the same code location, whose resources check these.
        dagster_env = {"DAGSTER_RUN_TASK_DEFINITION": run.task_definition_arn, **spark_env}
        module = ["-m", "dagster_project.definitions"]
        secrets = ("warehouse_url", "warehouse_pseudonym_key", "dagster_postgres_url")
        web = self._service(
            ProcessSpec(
                "dagster-webserver",
                # Loopback only: the way in is an SSM port forward into the task (docs/deploy.md).
                ["dagster-webserver", "-h", "127.0.0.1", "-p", str(DAGSTER_PORT), *module],
                cpu=512,
                memory_mib=2048,
                environment=dagster_env,
                secrets=secrets,
            ),
            execute_command=True,  # the SSM port forward to the UI
        )
        daemon = self._service(
            ProcessSpec(
                "dagster-daemon",
                ["dagster-daemon", "run", *module],
                cpu=512,
                memory_mib=2048,
                environment=dagster_env,
                secrets=secrets,
            )
        )
        self._ssm_agent_volumes(web.task_definition)
        # The daemon launches runs: it may start the run task and pass its roles.
        daemon.task_definition.task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "ecs:RunTask",
                    "ecs:DescribeTasks",
                    "ecs:StopTask",
                    "ecs:DescribeTaskDefinition",
                    "ecs:TagResource",
                ],
                resources=["*"],
                conditions={"ArnEquals": {"ecs:cluster": self.cluster.cluster_arn}},
            )
        )
        daemon.task_definition.task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[run.task_role.role_arn, run.obtain_execution_role().role_arn],
            )
        )
        daemon.task_definition.task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ec2:DescribeNetworkInterfaces", "secretsmanager:ListSecrets"],
                resources=["*"],
            )
        )

    def _ssm_agent_volumes(self, task: ecs.TaskDefinition) -> None:
        """ECS Exec's SSM agent writes its state and logs under /var/lib/amazon and
        /var/log/amazon: writable volumes there keep the root filesystem read-only."""
        container = task.default_container
        assert container is not None
        for name, path in (("ssm-state", "/var/lib/amazon"), ("ssm-logs", "/var/log/amazon")):
            task.add_volume(name=name)
            container.add_mount_points(
                ecs.MountPoint(container_path=path, source_volume=name, read_only=False)
            )

    # ---- Spark: EMR Serverless -----------------------------------------------------------

    def _emr_serverless(self) -> None:
        """The application, the job runs' role and log group, and the jobs' code: the entry
        point and the code bundle as CDK file assets (uploaded by ``cdk deploy``)."""
        self.emr_job_role = iam.Role(
            self,
            "SparkJobRole",
            assumed_by=iam.ServicePrincipal("emr-serverless.amazonaws.com"),
            description="Stride Spark jobs on EMR Serverless: the lake, nothing else",
        )
        self.data.lake.grant_read_write(self.emr_job_role)
        self.spark_logs = logs.LogGroup(
            self,
            "SparkLogs",
            log_group_name=f"/aws/emr-serverless/stride-{self.config.stage}",
            retention=logs.RetentionDays.ONE_MONTH,
            encryption_key=self.data.key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # EMR Serverless writes the driver's and executors' stdout/stderr there (Pipes reads
        # the driver's stdout); it looks the group up first.
        self.spark_logs.grant_write(self.emr_job_role)
        self.emr_job_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:DescribeLogGroups", "logs:DescribeLogStreams"],
                resources=["*"],
            )
        )
        self.spark_entry_point = s3_assets.Asset(self, "SparkEntryPoint", path=str(ENTRY_POINT))
        self.spark_code = s3_assets.Asset(self, "SparkCode", path=str(build_bundle()))
        for asset in (self.spark_entry_point, self.spark_code):
            asset.grant_read(self.emr_job_role)
        self.emr = emrserverless.CfnApplication(
            self,
            "Spark",
            name=f"stride-{self.config.stage}-spark",
            release_label=self.config.emr_release_label,
            type="SPARK",
            architecture="X86_64",
            auto_start_configuration=emrserverless.CfnApplication.AutoStartConfigurationProperty(
                enabled=True
            ),
            auto_stop_configuration=emrserverless.CfnApplication.AutoStopConfigurationProperty(
                enabled=True, idle_timeout_minutes=15
            ),
            maximum_capacity=emrserverless.CfnApplication.MaximumAllowedResourcesProperty(
                cpu="64 vCPU", memory="256 GB", disk="1000 GB"
            ),
            network_configuration=emrserverless.CfnApplication.NetworkConfigurationProperty(
                subnet_ids=self._private_subnet_ids(),
                security_group_ids=[self.data.clients.security_group_id],
            ),
        )
        cdk.CfnOutput(self, "SparkApplicationId", value=self.emr.attr_application_id)
        cdk.CfnOutput(self, "SparkJobRoleArn", value=self.emr_job_role.role_arn)

    def spark_environment(self) -> dict[str, str]:
        """How Dagster runs the silver/gold steps (core/platform/config.py SparkSettings):
        EMR Serverless job runs, unless the stage names a Spark Connect server."""
        if self.config.spark_remote:
            return {"STRIDE_SPARK_MODE": "connect"}
        env = {
            "STRIDE_SPARK_MODE": "emr-serverless",
            "STRIDE_SPARK_EMR_APPLICATION_ID": self.emr.attr_application_id,
            "STRIDE_SPARK_EMR_JOB_ROLE_ARN": self.emr_job_role.role_arn,
            "STRIDE_SPARK_EMR_ENTRY_POINT": self.spark_entry_point.s3_object_url,
            "STRIDE_SPARK_EMR_PY_FILES": self.spark_code.s3_object_url,
            "STRIDE_SPARK_EMR_LOG_GROUP": self.spark_logs.log_group_name,
        }
        if self.config.spark_python_archive:
            env["STRIDE_SPARK_EMR_PYTHON_ARCHIVE"] = self.config.spark_python_archive
        return env

    def _grant_spark_job_runs(self, role: iam.IRole) -> None:
        """The Dagster run task starts, watches and cancels job runs of this application
        only, passes the job role to EMR Serverless only, and reads the runs' logs (the
        Pipes messages)."""
        application = self.emr.attr_arn
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["emr-serverless:StartJobRun", "emr-serverless:GetApplication"],
                resources=[application],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "emr-serverless:GetJobRun",
                    "emr-serverless:CancelJobRun",
                    "emr-serverless:GetDashboardForJobRun",
                    "emr-serverless:TagResource",  # the run's Dagster tags
                ],
                resources=[application, f"{application}/jobruns/*"],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.emr_job_role.role_arn],
                conditions={
                    "StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}
                },
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:GetLogEvents", "logs:DescribeLogStreams"],
                resources=[
                    self.spark_logs.log_group_arn,
                    f"{self.spark_logs.log_group_arn}:log-stream:*",
                ],
            )
        )


def _cid(name: str) -> str:
    """``worker-lake-sink`` -> ``WorkerLakeSink``: a construct id."""
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )
