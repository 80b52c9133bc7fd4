"""What the delivery pipeline needs in the account: the image repository and the role
GitHub Actions assumes through OIDC (no stored keys), limited to this repository's
``<stage>`` GitHub environment."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import StageConfig

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
CDK_QUALIFIER = "hnb659fds"  # cdk bootstrap's default qualifier


class DeliveryStack(cdk.Stack):
    def __init__(self, scope: Construct, cid: str, *, config: StageConfig, **kwargs: object):
        super().__init__(scope, cid, **kwargs)  # type: ignore[arg-type]
        self.repository = ecr.Repository(
            self,
            "Images",
            repository_name=f"stride-{config.stage}",
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.KMS,
            lifecycle_rules=[ecr.LifecycleRule(max_image_count=50)],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # One OIDC provider per account and issuer: a second stage in the same account
        # imports it (stride:<stage>:github_oidc_provider_arn) instead of creating another.
        if config.github_oidc_provider_arn:
            provider_arn = config.github_oidc_provider_arn
        else:
            provider = iam.CfnOIDCProvider(
                self,
                "GitHubOidc",
                url=f"https://{GITHUB_OIDC_HOST}",
                client_id_list=["sts.amazonaws.com"],
            )
            provider_arn = provider.attr_arn

        def github(subject: str) -> iam.WebIdentityPrincipal:
            return iam.WebIdentityPrincipal(
                provider_arn,
                conditions={
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com",
                        f"{GITHUB_OIDC_HOST}:sub": f"repo:{config.github_repository}:{subject}",
                    }
                },
            )

        # Only jobs that run in this stage's GitHub environment (production's has required
        # reviewers: the manual approval) may deploy.
        principal = github(f"environment:{config.stage}")
        self.deploy_role = iam.Role(
            self,
            "DeployRole",
            role_name=f"stride-{config.stage}-github-deploy",
            assumed_by=principal,
            description="GitHub Actions: push the image, cdk deploy, run the migrate task",
            max_session_duration=cdk.Duration.hours(1),
        )
        # cdk deploy works through the bootstrap roles (CloudFormation does the changes).
        self.deploy_role.add_to_policy(
            iam.PolicyStatement(
                actions=["sts:AssumeRole"],
                resources=[
                    f"arn:{cdk.Aws.PARTITION}:iam::{cdk.Aws.ACCOUNT_ID}:role/"
                    f"cdk-{CDK_QUALIFIER}-{kind}-role-{cdk.Aws.ACCOUNT_ID}-{config.region}"
                    for kind in ("deploy", "file-publishing", "image-publishing", "lookup")
                ],
            )
        )
        self.repository.grant_pull_push(self.deploy_role)
        self.deploy_role.add_to_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        # The one-shot migrate task before the services roll (docs/deploy.md).
        cluster_arn = (
            f"arn:{cdk.Aws.PARTITION}:ecs:{config.region}:{cdk.Aws.ACCOUNT_ID}"
            f":cluster/stride-{config.stage}"
        )
        self.deploy_role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:RunTask", "ecs:DescribeTasks"],
                resources=["*"],
                conditions={"ArnEquals": {"ecs:cluster": cluster_arn}},
            )
        )
        self.deploy_role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ecs:DescribeTaskDefinition",
                    "ecs:RegisterTaskDefinition",
                    "ecs:DescribeServices",
                    "cloudformation:DescribeStacks",
                ],
                resources=["*"],
            )
        )
        self.deploy_role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[
                    f"arn:{cdk.Aws.PARTITION}:iam::{cdk.Aws.ACCOUNT_ID}:role/"
                    f"stride-{config.stage}-compute-*"
                ],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        # Pull requests get `cdk diff` only: the bootstrap's read-only lookup role.
        self.diff_role = iam.Role(
            self,
            "DiffRole",
            role_name=f"stride-{config.stage}-github-diff",
            assumed_by=github("pull_request"),
            description="GitHub Actions on pull requests: cdk diff (read-only)",
            max_session_duration=cdk.Duration.hours(1),
        )
        self.diff_role.add_to_policy(
            iam.PolicyStatement(
                actions=["sts:AssumeRole"],
                resources=[
                    f"arn:{cdk.Aws.PARTITION}:iam::{cdk.Aws.ACCOUNT_ID}:role/"
                    f"cdk-{CDK_QUALIFIER}-lookup-role-{cdk.Aws.ACCOUNT_ID}-{config.region}"
                ],
            )
        )
        cdk.CfnOutput(self, "DeployRoleArn", value=self.deploy_role.role_arn)
        cdk.CfnOutput(self, "DiffRoleArn", value=self.diff_role.role_arn)
        cdk.CfnOutput(self, "ImageRepositoryUri", value=self.repository.repository_uri)
