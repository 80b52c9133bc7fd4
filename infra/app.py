"""The CDK app: one stage per environment, one stack per concern inside it.

``python -m infra`` (or ``cdk synth`` in infra/) writes CloudFormation to ``infra/cdk.out``:
``-c stage=staging`` synthesizes one stage only; by default both are.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from infra.config import STAGES, StageConfig, stage_config
from infra.stacks.backup import BackupStack
from infra.stacks.compute import ComputeStack
from infra.stacks.data import DataStack
from infra.stacks.delivery import DeliveryStack
from infra.stacks.network import NetworkStack
from infra.stacks.observability import ObservabilityStack

INFRA_DIR = Path(__file__).resolve().parent


class StrideStage(cdk.Stage):
    """One environment: ``stride-<stage>-<concern>`` stacks."""

    def __init__(self, scope: cdk.App, config: StageConfig):
        env = cdk.Environment(account=config.account, region=config.region)
        super().__init__(scope, config.title, env=env)
        self.config = config

        def name(concern: str) -> dict[str, Any]:
            return {
                "stack_name": f"stride-{config.stage}-{concern}",
                "description": f"Stride {config.stage}: {concern}",
                "termination_protection": config.deletion_protection,
            }

        self.delivery = DeliveryStack(self, "Delivery", config=config, **name("delivery"))
        self.network = NetworkStack(self, "Network", config=config, **name("network"))
        self.data = DataStack(
            self,
            "Data",
            config=config,
            vpc=self.network.vpc,
            tasks_sg=self.network.tasks_sg,
            **name("data"),
        )
        self.compute = ComputeStack(
            self,
            "Compute",
            config=config,
            vpc=self.network.vpc,
            data=self.data,
            repository=self.delivery.repository,
            load_balancer_sg=self.network.load_balancer_sg,
            **name("compute"),
        )
        self.observability = ObservabilityStack(
            self,
            "Observability",
            config=config,
            data=self.data,
            compute=self.compute,
            **name("observability"),
        )
        self.backup = BackupStack(self, "Backup", config=config, data=self.data, **name("backup"))
        cdk.Tags.of(self).add("stride:stage", config.stage)
        cdk.Tags.of(self).add("stride:managed-by", "aws-cdk infra/")
        for key, value in config.tags.items():
            cdk.Tags.of(self).add(key, value)


def stages_to_build(context: Mapping[str, Any]) -> list[str]:
    """The stages of ``-c stage=...`` (comma-separated), all by default."""
    wanted = str(context.get("stage") or ",".join(STAGES))
    return [stage.strip() for stage in wanted.split(",") if stage.strip()]


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> cdk.App:
    """The app with its stages; ``context`` adds to (or replaces keys of) cdk.json's."""
    import json

    base = json.loads((INFRA_DIR / "cdk.json").read_text())["context"]
    merged = {**base, **(context or {})}
    app = cdk.App(context=merged, outdir=outdir)
    # `cdk synth` passes cdk.json's context and -c values; they win over the file's.
    read = dict(app.node.get_all_context())
    for stage in stages_to_build(read):
        StrideStage(app, stage_config(stage, read))
    return app


def main() -> None:
    import os

    # The cdk CLI says where to write (CDK_OUTDIR); run directly, infra/cdk.out.
    build_app(outdir=os.environ.get("CDK_OUTDIR") or str(INFRA_DIR / "cdk.out")).synth()
