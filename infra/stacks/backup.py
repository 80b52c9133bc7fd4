"""AWS Backup: daily, weekly and monthly recovery points of PostgreSQL and the lake bucket
in an encrypted vault (beside RDS point-in-time recovery and the bucket's versions)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_backup as backup
from aws_cdk import aws_events as events
from constructs import Construct

from infra.config import StageConfig
from infra.stacks.data import DataStack


class BackupStack(cdk.Stack):
    def __init__(
        self, scope: Construct, cid: str, *, config: StageConfig, data: DataStack, **kwargs: object
    ):
        super().__init__(scope, cid, **kwargs)  # type: ignore[arg-type]
        vault = backup.BackupVault(
            self,
            "Vault",
            backup_vault_name=f"stride-{config.stage}",
            encryption_key=data.key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.plan = backup.BackupPlan(
            self,
            "Plan",
            backup_plan_name=f"stride-{config.stage}",
            backup_vault=vault,
            backup_plan_rules=[
                backup.BackupPlanRule(
                    rule_name="daily",
                    schedule_expression=events.Schedule.cron(hour="3", minute="0"),
                    delete_after=cdk.Duration.days(35),
                    enable_continuous_backup=False,
                ),
                backup.BackupPlanRule(
                    rule_name="weekly",
                    schedule_expression=events.Schedule.cron(week_day="SUN", hour="4", minute="0"),
                    delete_after=cdk.Duration.days(90),
                ),
                backup.BackupPlanRule(
                    rule_name="monthly",
                    schedule_expression=events.Schedule.cron(day="1", hour="5", minute="0"),
                    move_to_cold_storage_after=cdk.Duration.days(30),
                    delete_after=cdk.Duration.days(365),
                ),
            ],
        )
        self.plan.add_selection(
            "Stores",
            resources=[
                backup.BackupResource.from_rds_database_instance(data.database),
                backup.BackupResource.from_arn(data.lake.bucket_arn),
            ],
        )
