"""Deployment: chain id check, idempotent re-runs, roles granted and verified, admin handover,
the local-stack hook, and the ``stride contracts`` / ``stride bridge relay`` commands."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from eth_account import Account
from typer.testing import CliRunner

from cli.contracts_cmd import bridge_app, contracts_app
from contracts.deploy import (
    DeployConfig,
    DeployError,
    Deployment,
    deploy,
    deployment_is_live,
    ensure_local_deployment,
    load_deployment,
    verify_deployment,
)
from contracts.node import TxSender
from core.platform.config import get_settings
from tests.contracts.conftest import CHAIN_A, CHAIN_B, E18, Node, fund, role, send

runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set STRIDE_* variables for one test; settings are re-read before and after."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def test_recorded_deployment_is_reused(
    node_a: Node, accounts: SimpleNamespace, deployment_a: Deployment, deployments_dir: Path
) -> None:
    assert load_deployment(CHAIN_A, deployments_dir) == deployment_a
    sender = TxSender.from_key(node_a.w3, accounts.deployer.key.hex())
    again = deploy(sender, DeployConfig(), expected_chain_id=CHAIN_A, directory=deployments_dir)
    assert again.contracts == deployment_a.contracts
    assert verify_deployment(node_a.w3, deployment_a) == []


def test_dead_deployment_is_replaced(
    node_a: Node, accounts: SimpleNamespace, deployment_a: Deployment, tmp_path: Path
) -> None:
    stale = dataclasses.replace(
        deployment_a,
        contracts={
            **deployment_a.contracts,
            "StrideToken": {
                **deployment_a.contracts["StrideToken"],
                "address": accounts.bob.address,
            },
        },
    )
    assert not deployment_is_live(node_a.w3, stale)
    (tmp_path / f"{CHAIN_A}.json").write_text(json.dumps(dataclasses.asdict(stale)))
    sender = TxSender.from_key(node_a.w3, accounts.deployer.key.hex())
    fresh = deploy(sender, DeployConfig(), directory=tmp_path)
    assert fresh.address("StrideToken") != accounts.bob.address
    assert deployment_is_live(node_a.w3, fresh)
    assert load_deployment(CHAIN_A, tmp_path) == fresh


def test_wrong_chain_id_is_refused(node_a: Node, accounts: SimpleNamespace, tmp_path: Path) -> None:
    sender = TxSender.from_key(node_a.w3, accounts.deployer.key.hex())
    with pytest.raises(DeployError, match="chain id 31337, not 11155111"):
        deploy(sender, DeployConfig(), expected_chain_id=11155111, directory=tmp_path)
    assert not list(tmp_path.iterdir())


def test_admin_handover_and_role_verification(
    node_a: Node, accounts: SimpleNamespace, tmp_path: Path
) -> None:
    multisig = Account.create().address
    sender = TxSender.from_key(node_a.w3, accounts.deployer.key.hex())
    config = DeployConfig(admin=multisig, rewards_minter=accounts.minter.address)
    deployment = deploy(sender, config, expected_chain_id=CHAIN_A, directory=tmp_path)
    token = deployment.contract(node_a.w3, "StrideToken")
    admin_role = role(token, "DEFAULT_ADMIN_ROLE")
    assert token.functions.hasRole(admin_role, multisig).call()
    assert not token.functions.hasRole(admin_role, accounts.deployer.address).call()
    assert verify_deployment(node_a.w3, deployment) == []
    # The verifier notices a role that went missing.
    fund(node_a.w3, multisig)
    send(token.functions.revokeRole(role(token, "MINTER_ROLE"), accounts.minter.address), multisig)
    assert verify_deployment(node_a.w3, deployment) == [
        "rewards minter lacks MINTER_ROLE on StrideToken"
    ]


def test_local_stack_hook_is_idempotent(node_a: Node, tmp_path: Path) -> None:
    first = ensure_local_deployment(node_a.url, CHAIN_A, directory=tmp_path)
    second = ensure_local_deployment(node_a.url, CHAIN_A, directory=tmp_path)
    assert first.contracts == second.contracts
    assert first.deployer == node_a.w3.eth.accounts[0]


def test_cli_deploy_reads_key_from_env(
    node_a: Node, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    deployer = Account.create()
    fund(node_a.w3, deployer.address)
    env.setenv("STRIDE_DEPLOYER_PRIVATE_KEY", deployer.key.hex())
    args = ["deploy", "--rpc", node_a.url, "--deployments-dir", str(tmp_path)]
    result = runner.invoke(contracts_app, [*args, "--chain-id", "1"])
    assert result.exit_code == 1
    assert "serves chain id 31337, not 1" in result.output
    result = runner.invoke(contracts_app, [*args, "--chain-id", str(CHAIN_A), "--fee-bps", "100"])
    assert result.exit_code == 0, result.output
    deployment = load_deployment(CHAIN_A, tmp_path)
    assert deployment is not None and deployment.deployer == deployer.address
    assert deployment.config["market_fee_bps"] == 100
    assert deployer.key.hex() not in (tmp_path / f"{CHAIN_A}.json").read_text()


def test_cli_deploy_records_where_the_setting_says_by_default(
    node_a: Node, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without --deployments-dir the file goes where the services read it from
    (STRIDE_CONTRACT_DEPLOYMENTS_DIR), not into the checkout."""
    env.delenv("STRIDE_DEPLOYER_PRIVATE_KEY", raising=False)
    env.setenv("STRIDE_CONTRACT_DEPLOYMENTS_DIR", str(tmp_path / "from-setting"))
    result = runner.invoke(contracts_app, ["deploy", "--rpc", node_a.url, "--fresh"])
    assert result.exit_code == 0, result.output
    assert load_deployment(CHAIN_A, tmp_path / "from-setting") is not None
    assert str(tmp_path / "from-setting") in result.output.replace("\n", "")  # rich wraps it


def test_cli_build_check() -> None:
    result = runner.invoke(contracts_app, ["build", "--check"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_cli_relay_once(
    node_a: Node,
    node_b: Node,
    c: SimpleNamespace,
    accounts: SimpleNamespace,
    deployment_b: Deployment,
    deployments_dir: Path,
    env: pytest.MonkeyPatch,
) -> None:
    """`stride bridge relay --once` reads both deployments and completes A -> B."""
    alice = accounts.alice
    send(c.token.functions.mint(alice.address, 5 * E18), accounts.minter)
    send(c.token.functions.approve(c.bridge.address, 5 * E18), alice)
    send(c.bridge.functions.bridgeOut(CHAIN_B, alice.address, 5 * E18), alice)
    env.setenv("STRIDE_BRIDGE_VALIDATOR_KEYS", f"{accounts.v1.key.hex()},{accounts.v3.key.hex()}")
    env.setenv("STRIDE_RELAYER_PRIVATE_KEY", accounts.carol.key.hex())
    args = ["relay", "--rpc-a", node_a.url, "--rpc-b", node_b.url, "--once"]
    result = runner.invoke(bridge_app, [*args, "--deployments-dir", str(deployments_dir)])
    assert result.exit_code == 0, result.output
    assert "relayed" in result.output
    token_b = deployment_b.contract(node_b.w3, "StrideToken")
    assert token_b.functions.balanceOf(alice.address).call() == 5 * E18
    for checkpoint in deployments_dir.glob("relay-*.json"):
        checkpoint.unlink()  # chain state is reverted after the test


def test_cli_relay_needs_validator_keys(node_a: Node, env: pytest.MonkeyPatch) -> None:
    env.delenv("STRIDE_BRIDGE_VALIDATOR_KEYS", raising=False)
    result = runner.invoke(bridge_app, ["relay", "--rpc-a", node_a.url, "--rpc-b", node_a.url])
    assert result.exit_code == 1
    assert "STRIDE_BRIDGE_VALIDATOR_KEYS" in result.output
