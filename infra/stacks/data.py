"""The stores: PostgreSQL (RDS, Multi-AZ), Kafka (MSK, three brokers, replication factor 3),
the lake bucket (S3), the warehouse (Redshift Serverless), their KMS key and the app's
secrets. Everything encrypted with a customer-managed key, nothing reachable from outside
the VPC's isolated subnets."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_msk as msk
from aws_cdk import aws_rds as rds
from aws_cdk import aws_redshiftserverless as redshift
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import StageConfig

# Every topic the platform creates gets three replicas and stays writable with one broker
# down (min ISR 2); topics are created by the migrate task (core/platform/topics.py), never
# implicitly by a producer's typo.
MSK_SERVER_PROPERTIES = "\n".join(
    [
        "default.replication.factor=3",
        "min.insync.replicas=2",
        "offsets.topic.replication.factor=3",
        "transaction.state.log.replication.factor=3",
        "transaction.state.log.min.isr=2",
        "auto.create.topics.enable=false",
        "unclean.leader.election.enable=false",
        "num.partitions=12",
    ]
)
KAFKA_VERSION = "3.9.x"  # MSK's newest KRaft line at the time of writing
POSTGRES_VERSION = rds.PostgresEngineVersion.VER_15_17  # the local stack's major version
DATABASE_PORT = 5432
WAREHOUSE_PORT = 5439

# Keys of the app secret the operator fills after the first deploy (docs/deploy.md); each
# becomes the variable of infra/stacks/compute.py SECRET_ENV (STRIDE_<KEY> but one).
# `secret_key` (STRIDE_SECRET_KEY, the admin sessions' key) is generated.
APP_SECRET_KEYS = (
    "database_url",
    "readonly_database_url",
    "warehouse_url",
    "kafka_bootstrap",
    "warehouse_pseudonym_key",
    "indexer_chains",
    "evm_rpc_url",
    "dagster_postgres_url",  # Dagster's own storage (DAGSTER_POSTGRES_URL, not a STRIDE_ one)
)


class DataStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        config: StageConfig,
        vpc: ec2.IVpc,
        tasks_sg: ec2.ISecurityGroup,
        **kwargs: object,
    ):
        super().__init__(scope, cid, **kwargs)  # type: ignore[arg-type]
        retain = (
            cdk.RemovalPolicy.RETAIN if config.deletion_protection else cdk.RemovalPolicy.SNAPSHOT
        )
        isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

        self.key = kms.Key(
            self,
            "DataKey",
            alias=f"alias/stride-{config.stage}-data",
            description="Stride data at rest: database, brokers, lake, warehouse, secrets, logs",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # CloudWatch Logs encrypts the log groups with this key only when its service may.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{config.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
            )
        )

        self.clients = tasks_sg  # the stores admit the tasks' security group, nothing else

        # ---- PostgreSQL ------------------------------------------------------------------
        db_sg = ec2.SecurityGroup(
            self,
            "DatabaseSg",
            vpc=vpc,
            description="PostgreSQL: from Stride tasks only",
            allow_all_outbound=False,
        )
        db_sg.add_ingress_rule(self.clients, ec2.Port.tcp(DATABASE_PORT), "Stride tasks")
        # The instance's log groups, made here with the data key and a retention (RDS would
        # make them unencrypted, and a retention would need a custom-resource Lambda).
        db_identifier = f"stride-{config.stage}"
        db_logs = [
            logs.LogGroup(
                self,
                f"DatabaseLogs{kind.capitalize()}",
                log_group_name=f"/aws/rds/instance/{db_identifier}/{kind}",
                retention=logs.RetentionDays.ONE_MONTH,
                encryption_key=self.key,
                removal_policy=cdk.RemovalPolicy.DESTROY,
            )
            for kind in ("postgresql", "upgrade")
        ]
        self.database = rds.DatabaseInstance(
            self,
            "Database",
            instance_identifier=db_identifier,
            engine=rds.DatabaseInstanceEngine.postgres(version=POSTGRES_VERSION),
            instance_type=ec2.InstanceType(config.db_instance_class),
            vpc=vpc,
            vpc_subnets=isolated,
            security_groups=[db_sg],
            multi_az=True,
            storage_encrypted=True,
            storage_encryption_key=self.key,
            storage_type=rds.StorageType.GP3,
            allocated_storage=config.db_allocated_storage_gb,
            max_allocated_storage=config.db_allocated_storage_gb * 4,
            credentials=rds.Credentials.from_generated_secret(
                "stride_admin", encryption_key=self.key
            ),
            database_name="stride",
            port=DATABASE_PORT,
            publicly_accessible=False,
            iam_authentication=True,
            backup_retention=cdk.Duration.days(config.db_backup_retention_days),
            copy_tags_to_snapshot=True,
            delete_automated_backups=False,
            deletion_protection=config.deletion_protection,
            removal_policy=retain,
            auto_minor_version_upgrade=True,
            enable_performance_insights=True,
            performance_insight_encryption_key=self.key,
            monitoring_interval=cdk.Duration.seconds(60),
            cloudwatch_logs_exports=["postgresql", "upgrade"],
            parameter_group=rds.ParameterGroup(
                self,
                "DatabaseParameters",
                engine=rds.DatabaseInstanceEngine.postgres(version=POSTGRES_VERSION),
                parameters={
                    "rds.force_ssl": "1",
                    "log_min_duration_statement": "1000",
                    "log_connections": "1",
                    "log_disconnections": "1",
                },
            ),
        )

        for log_group in db_logs:
            self.database.node.add_dependency(log_group)

        # ---- Kafka (MSK) -------------------------------------------------------------------
        kafka_sg = ec2.SecurityGroup(
            self,
            "KafkaSg",
            vpc=vpc,
            description="MSK brokers: TLS + IAM from Stride tasks only",
            allow_all_outbound=False,
        )
        kafka_sg.add_ingress_rule(self.clients, ec2.Port.tcp(9098), "Stride tasks, IAM over TLS")
        broker_logs = logs.LogGroup(
            self,
            "BrokerLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            encryption_key=self.key,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        kafka_config = msk.CfnConfiguration(
            self,
            "KafkaConfiguration",
            name=f"stride-{config.stage}",
            server_properties=MSK_SERVER_PROPERTIES,
            kafka_versions_list=[KAFKA_VERSION],
        )
        self.kafka = msk.CfnCluster(
            self,
            "Kafka",
            cluster_name=f"stride-{config.stage}",
            kafka_version=KAFKA_VERSION,
            number_of_broker_nodes=3,
            broker_node_group_info=msk.CfnCluster.BrokerNodeGroupInfoProperty(
                instance_type=config.msk_broker_instance_type,
                client_subnets=vpc.select_subnets(
                    subnet_type=ec2.SubnetType.PRIVATE_ISOLATED
                ).subnet_ids,
                security_groups=[kafka_sg.security_group_id],
                storage_info=msk.CfnCluster.StorageInfoProperty(
                    ebs_storage_info=msk.CfnCluster.EBSStorageInfoProperty(
                        volume_size=config.msk_broker_storage_gb
                    )
                ),
                connectivity_info=msk.CfnCluster.ConnectivityInfoProperty(
                    public_access=msk.CfnCluster.PublicAccessProperty(type="DISABLED")
                ),
            ),
            client_authentication=msk.CfnCluster.ClientAuthenticationProperty(
                sasl=msk.CfnCluster.SaslProperty(iam=msk.CfnCluster.IamProperty(enabled=True)),
                unauthenticated=msk.CfnCluster.UnauthenticatedProperty(enabled=False),
            ),
            encryption_info=msk.CfnCluster.EncryptionInfoProperty(
                encryption_at_rest=msk.CfnCluster.EncryptionAtRestProperty(
                    data_volume_kms_key_id=self.key.key_arn
                ),
                encryption_in_transit=msk.CfnCluster.EncryptionInTransitProperty(
                    client_broker="TLS", in_cluster=True
                ),
            ),
            configuration_info=msk.CfnCluster.ConfigurationInfoProperty(
                arn=kafka_config.attr_arn, revision=1
            ),
            enhanced_monitoring="PER_TOPIC_PER_PARTITION",
            logging_info=msk.CfnCluster.LoggingInfoProperty(
                broker_logs=msk.CfnCluster.BrokerLogsProperty(
                    cloud_watch_logs=msk.CfnCluster.CloudWatchLogsProperty(
                        enabled=True, log_group=broker_logs.log_group_name
                    )
                )
            ),
        )

        # ---- the lake (S3) ---------------------------------------------------------------
        access_logs = s3.Bucket(
            self,
            "LakeAccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # log delivery cannot use a KMS key
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            # Log delivery is granted by bucket policy (cdk.json's serverAccessLogsUseBucketPolicy),
            # not by the legacy ACL.
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(365))],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.lake = s3.Bucket(
            self,
            "Lake",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,  # with Delta time travel: a deleted or overwritten file comes back
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="lake/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="old-versions",
                    noncurrent_version_expiration=cdk.Duration.days(config.lake_noncurrent_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                ),
                s3.LifecycleRule(
                    id="staging-area",  # gold days staged for Redshift COPY (core/warehouse)
                    prefix="staging/",
                    expiration=cdk.Duration.days(14),
                ),
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

        # ---- the warehouse (Redshift Serverless) -------------------------------------------
        self.warehouse_copy_role = iam.Role(
            self,
            "WarehouseCopyRole",
            assumed_by=iam.ServicePrincipal("redshift.amazonaws.com"),
            description="Redshift COPY from the lake's staging prefix",
        )
        self.lake.grant_read(self.warehouse_copy_role, "staging/*")
        warehouse_sg = ec2.SecurityGroup(
            self,
            "WarehouseSg",
            vpc=vpc,
            description="Redshift Serverless: Stride tasks only",
            allow_all_outbound=False,
        )
        warehouse_sg.add_ingress_rule(self.clients, ec2.Port.tcp(WAREHOUSE_PORT), "Stride tasks")
        namespace = redshift.CfnNamespace(
            self,
            "WarehouseNamespace",
            namespace_name=f"stride-{config.stage}",
            db_name="warehouse",
            admin_username="stride_admin",
            manage_admin_password=True,
            admin_password_secret_kms_key_id=self.key.key_arn,
            kms_key_id=self.key.key_arn,
            iam_roles=[self.warehouse_copy_role.role_arn],
            default_iam_role_arn=self.warehouse_copy_role.role_arn,
            log_exports=["userlog", "connectionlog", "useractivitylog"],
        )
        workgroup = redshift.CfnWorkgroup(
            self,
            "Warehouse",
            workgroup_name=f"stride-{config.stage}",
            namespace_name=namespace.namespace_name,
            base_capacity=8,
            publicly_accessible=False,
            enhanced_vpc_routing=True,
            port=WAREHOUSE_PORT,
            subnet_ids=vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids,
            security_group_ids=[warehouse_sg.security_group_id],
            config_parameters=[
                redshift.CfnWorkgroup.ConfigParameterProperty(
                    parameter_key="require_ssl", parameter_value="true"
                )
            ],
        )
        workgroup.add_resource_dependency(namespace)

        # ---- the app's secrets -----------------------------------------------------------
        self.app_secret = secretsmanager.Secret(
            self,
            "AppSecret",
            secret_name=f"stride/{config.stage}/app",
            description="STRIDE_* connection URLs and keys of the app (docs/deploy.md: Secrets)",
            encryption_key=self.key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps(dict.fromkeys(APP_SECRET_KEYS, "")),
                generate_string_key="secret_key",
                exclude_punctuation=True,
                password_length=48,
            ),
        )

        cdk.CfnOutput(self, "KafkaClusterArn", value=self.kafka.attr_arn)
        cdk.CfnOutput(self, "DatabaseSecretArn", value=self.database.secret.secret_arn)  # type: ignore[union-attr]
        cdk.CfnOutput(self, "AppSecretArn", value=self.app_secret.secret_arn)
        cdk.CfnOutput(self, "LakeBucket", value=self.lake.bucket_name)
        cdk.CfnOutput(self, "WarehouseWorkgroup", value=workgroup.workgroup_name)
