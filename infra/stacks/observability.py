"""CloudWatch alarms on what hurts users and the data (5xx, latency, lag, stores filling,
replicas missing) to one encrypted SNS topic, and a dashboard of the same metrics."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import StageConfig
from infra.stacks.compute import CONSUMER_GROUPS, LAG_METRIC, LAG_NAMESPACE, ComputeStack
from infra.stacks.data import DataStack


class ObservabilityStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        config: StageConfig,
        data: DataStack,
        compute: ComputeStack,
        **kwargs: object,
    ):
        super().__init__(scope, cid, **kwargs)  # type: ignore[arg-type]
        self.topic = sns.Topic(
            self,
            "Alarms",
            topic_name=f"stride-{config.stage}-alarms",
            master_key=data.key,
            enforce_ssl=True,
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self.alarms: list[cloudwatch.Alarm] = []
        minute = cdk.Duration.minutes(1)
        alb = compute.alb.metrics
        targets = compute.api_targets.metrics

        api_5xx = cloudwatch.MathExpression(
            expression="100 * errors / MAX([requests, 1])",
            using_metrics={
                "errors": targets.http_code_target(
                    code=elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=minute, statistic="Sum"
                ),
                "requests": targets.request_count(period=minute, statistic="Sum"),
            },
            label="API 5xx %",
            period=minute,
        )
        self._alarm("Api5xxRate", api_5xx, 5, "more than 5 % of API responses are 5xx", 3)
        p99 = targets.target_response_time(period=minute, statistic="p99")
        self._alarm("ApiLatencyP99", p99, 1.0, "API p99 latency above 1 s", 5)
        self._alarm(
            "ApiUnhealthyTargets",
            targets.unhealthy_host_count(period=minute, statistic="Max"),
            1,
            "an API task fails its /health check",
            3,
        )
        self._alarm(
            "AlbRejected",
            alb.rejected_connection_count(period=minute),
            10,
            "the load balancer rejects connections",
            3,
        )
        lag_widgets = []
        for group in CONSUMER_GROUPS.values():
            lag = cloudwatch.Metric(
                namespace=LAG_NAMESPACE,
                metric_name=LAG_METRIC,
                dimensions_map={"Stage": config.stage, "ConsumerGroup": group},
                statistic="Sum",
                period=minute,
            )
            lag_widgets.append(lag)
            self._alarm(
                f"Lag{_cid(group)}",
                lag,
                config.worker_lag_target * 10,
                f"consumer group {group} is far behind (or the exporter stopped reporting)",
                10,
                missing=cloudwatch.TreatMissingData.BREACHING,
            )
        database = data.database
        self._alarm(
            "DatabaseCpu",
            database.metric_cpu_utilization(period=minute),
            85,
            "PostgreSQL CPU above 85 %",
            10,
        )
        self._alarm(
            "DatabaseStorageLow",
            database.metric_free_storage_space(period=cdk.Duration.minutes(5)),
            10 * 1024**3,
            "PostgreSQL has under 10 GB free (storage autoscaling should have grown it)",
            2,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        )
        kafka = {"Cluster Name": f"stride-{config.stage}"}
        under_replicated = cloudwatch.Metric(
            namespace="AWS/Kafka",
            metric_name="UnderReplicatedPartitions",
            dimensions_map=kafka,
            statistic="Sum",
            period=minute,
        )
        self._alarm(
            "KafkaUnderReplicated",
            under_replicated,
            1,
            "Kafka partitions below replication factor 3",
            5,
        )
        offline = cloudwatch.Metric(
            namespace="AWS/Kafka",
            metric_name="OfflinePartitionsCount",
            dimensions_map=kafka,
            statistic="Max",
            period=minute,
        )
        self._alarm("KafkaOfflinePartitions", offline, 1, "Kafka partitions offline", 1)
        disk = cloudwatch.Metric(
            namespace="AWS/Kafka",
            metric_name="KafkaDataLogsDiskUsed",
            dimensions_map=kafka,
            statistic="Maximum",
            period=cdk.Duration.minutes(5),
        )
        self._alarm("KafkaDiskFilling", disk, 80, "a Kafka broker's disk is 80 % full", 2)

        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"stride-{config.stage}",
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and 5xx %",
                left=[targets.request_count(period=minute, statistic="Sum")],
                right=[api_5xx],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API latency",
                left=[targets.target_response_time(period=minute, statistic="p50"), p99],
                width=12,
            ),
            cloudwatch.GraphWidget(title="Consumer lag per group", left=lag_widgets, width=12),
            cloudwatch.GraphWidget(
                title="Kafka", left=[under_replicated, offline], right=[disk], width=12
            ),
            cloudwatch.GraphWidget(
                title="PostgreSQL",
                left=[database.metric_cpu_utilization(period=minute)],
                right=[database.metric_free_storage_space(period=cdk.Duration.minutes(5))],
                width=12,
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=12),
        )
        cdk.CfnOutput(self, "AlarmTopicArn", value=self.topic.topic_arn)

    def _alarm(
        self,
        cid: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        periods: int,
        *,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        ),
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            cid,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=comparison,
            treat_missing_data=missing,
            alarm_description=description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        alarm.add_ok_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)


def _cid(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))
