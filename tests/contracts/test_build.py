"""The committed artifacts match a fresh compile of contracts/src, and solhint is clean."""

from __future__ import annotations

import shutil
import subprocess

from contracts.artifacts import CONTRACTS_DIR
from contracts.build import build


def test_committed_artifacts_are_fresh() -> None:
    result = build(check=True)
    assert not result.stale, (
        f"stale artifacts {result.stale}: run `stride contracts build` and commit them"
    )
    assert not result.warnings, "\n".join(result.warnings)


def test_solhint_is_clean() -> None:
    node = shutil.which("node")
    assert node, "node is required to lint the contracts"
    proc = subprocess.run(
        [
            node,
            str(CONTRACTS_DIR / "node_modules" / "solhint" / "solhint.js"),
            "--max-warnings",
            "0",
            "--config",
            ".solhint.json",
            "src/**/*.sol",
        ],
        cwd=CONTRACTS_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
