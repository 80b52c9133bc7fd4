"""Offline Solidity build: drive solc-js through standard JSON and write committed artifacts.

Owns the compiler settings. Every contract under ``contracts/src`` becomes
``contracts/artifacts/<Name>.json`` (ABI, bytecode, deployed bytecode, compiler version and
settings). ``check=True`` recompiles in memory and reports artifacts that differ.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from contracts.artifacts import ARTIFACTS_DIR, CONTRACTS_DIR

SOURCE_DIR = CONTRACTS_DIR / "src"
COMPILE_SCRIPT = CONTRACTS_DIR / "scripts" / "solc-standard-json.cjs"
COMPILER_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "metadata": {"bytecodeHash": "ipfs"},
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]},
    },
}


class BuildError(RuntimeError):
    """The compiler is missing or reported errors."""


@dataclass
class BuildResult:
    """What a build produced, or (with check) which artifacts are stale."""

    compiler_version: str
    artifacts: dict[str, dict[str, Any]]
    stale: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _source_units() -> dict[str, dict[str, str]]:
    return {
        path.relative_to(CONTRACTS_DIR).as_posix(): {"content": path.read_text()}
        for path in sorted(SOURCE_DIR.rglob("*.sol"))
    }


def _run_solc(standard_input: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        raise BuildError("node is not on PATH; install Node 20 to build the contracts")
    if not (CONTRACTS_DIR / "node_modules" / "solc").exists():
        raise BuildError("solc-js is not installed; run `npm ci --prefix contracts`")
    proc = subprocess.run(  # noqa: S603 (fixed argv: node and our script)
        [node, str(COMPILE_SCRIPT)],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        check=False,
        cwd=CONTRACTS_DIR,
    )
    if proc.returncode != 0:
        raise BuildError(f"solc-js failed: {proc.stderr.strip()}")
    result = json.loads(proc.stdout)
    return result["version"], result["output"]


def compile_sources() -> BuildResult:
    """Compile every source under contracts/src and return artifacts keyed by contract name."""
    standard_input = {
        "language": "Solidity",
        "sources": _source_units(),
        "settings": COMPILER_SETTINGS,
    }
    version, output = _run_solc(standard_input)
    errors = [e for e in output.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise BuildError("\n".join(e["formattedMessage"] for e in errors))
    warnings = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] != "error"]
    settings = {k: v for k, v in COMPILER_SETTINGS.items() if k != "outputSelection"}
    artifacts: dict[str, dict[str, Any]] = {}
    for source_name, contracts in sorted(output.get("contracts", {}).items()):
        if not source_name.startswith("src/"):
            continue
        for name, compiled in sorted(contracts.items()):
            if name in artifacts:
                raise BuildError(f"two contracts are named {name}; names must be unique")
            artifacts[name] = {
                "contractName": name,
                "sourceName": source_name,
                "compiler": {"version": version, "settings": settings},
                "abi": compiled["abi"],
                "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
            }
    return BuildResult(compiler_version=version, artifacts=artifacts, warnings=warnings)


def _render(artifact: dict[str, Any]) -> str:
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def build(check: bool = False) -> BuildResult:
    """Compile; write artifacts (removing ones without a source) or, with check, only compare."""
    result = compile_sources()
    wanted = {f"{name}.json": _render(a) for name, a in result.artifacts.items()}
    existing = {p.name for p in ARTIFACTS_DIR.glob("*.json")} if ARTIFACTS_DIR.exists() else set()
    for filename, text in wanted.items():
        path = ARTIFACTS_DIR / filename
        if not path.exists() or path.read_text() != text:
            result.stale.append(filename)
    result.stale.extend(sorted(existing - wanted.keys()))
    if check:
        return result
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    for filename, text in wanted.items():
        (ARTIFACTS_DIR / filename).write_text(text)
    for filename in existing - wanted.keys():
        (ARTIFACTS_DIR / filename).unlink()
    return result
