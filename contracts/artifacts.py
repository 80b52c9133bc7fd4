"""Read compiled contract artifacts (ABI and bytecode) committed under contracts/artifacts/."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).resolve().parent
ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"


class ArtifactNotFoundError(FileNotFoundError):
    """An artifact is missing: the contracts have not been built."""


@dataclass(frozen=True)
class Artifact:
    """One compiled contract."""

    name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str


@cache
def load_artifact(name: str) -> Artifact:
    """Load the artifact of contract `name` (e.g. ``"StrideToken"``)."""
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.exists():
        raise ArtifactNotFoundError(
            f"no artifact for {name!r} in {ARTIFACTS_DIR}; run `stride contracts build`"
        )
    data = json.loads(path.read_text())
    return Artifact(
        name=data["contractName"],
        source=data["sourceName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
    )
