"""The VPC: public subnets for the load balancer and NAT only, private subnets (with egress)
for every task, isolated subnets for the databases and brokers; flow logs on."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import StageConfig


class NetworkStack(cdk.Stack):
    def __init__(self, scope: Construct, cid: str, *, config: StageConfig, **kwargs: object):
        super().__init__(scope, cid, **kwargs)  # type: ignore[arg-type]
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.vpc_cidr),
            availability_zones=list(config.availability_zones),
            nat_gateways=config.nat_gateways,
            restrict_default_security_group=True,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=24,
                    map_public_ip_on_launch=False,
                ),
                ec2.SubnetConfiguration(
                    name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20
                ),
                ec2.SubnetConfiguration(
                    name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                ),
            ],
        )
        key = kms.Key(
            self,
            "FlowLogsKey",
            alias=f"alias/stride-{config.stage}-flow-logs",
            description="Stride VPC flow logs",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        key.add_to_resource_policy(
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
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            retention=logs.RetentionDays.THREE_MONTHS,
            encryption_key=key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.vpc.add_flow_log(
            "FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs)
        )
        # Security groups live here so that the stacks that add rules between them (the data
        # stores admit the tasks, the load balancer reaches the API) never depend on each other.
        self.load_balancer_sg = ec2.SecurityGroup(
            self,
            "LoadBalancerSg",
            vpc=self.vpc,
            description="API load balancer: HTTPS from anywhere",
            allow_all_outbound=False,
        )
        self.load_balancer_sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS")
        self.load_balancer_sg.add_ingress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "redirected to HTTPS"
        )
        self.tasks_sg = ec2.SecurityGroup(
            self,
            "TasksSg",
            vpc=self.vpc,
            description="Stride ECS tasks and Spark jobs",
            allow_all_outbound=True,
        )
        # Where one-shot tasks run (infra/bin/run-migrations.sh).
        cdk.CfnOutput(
            self,
            "TaskSubnets",
            value=",".join(
                self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids
            ),
        )
        cdk.CfnOutput(self, "TaskSecurityGroup", value=self.tasks_sg.security_group_id)
        # The tasks reach S3 without the NAT (lake writes are the bulk of the traffic).
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
