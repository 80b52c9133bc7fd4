"""The CDK app synthesized once per session (both stages, ~20 s), offline: no account, no
lookups. Tests read the templates with ``aws_cdk.assertions``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


@pytest.fixture(scope="session")
def stages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    from infra.app import StrideStage, build_app

    outdir: Path = tmp_path_factory.mktemp("cdk.out")
    app = build_app(outdir=str(outdir))
    found = {
        child.config.stage: child for child in app.node.children if isinstance(child, StrideStage)
    }
    app.synth()
    yield found
