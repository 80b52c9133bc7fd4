"""``stride contracts ...`` (build, deploy) and ``stride bridge relay``: the contracts CLI.

Thin edges over ``contracts.build``, ``contracts.deploy`` and ``contracts.relayer``. Keys are
read from the environment through the settings (``STRIDE_DEPLOYER_PRIVATE_KEY``,
``STRIDE_RELAYER_PRIVATE_KEY``, ``STRIDE_BRIDGE_VALIDATOR_KEYS``), never from files.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table

from contracts.build import BuildError, build
from contracts.deploy import (
    TOKEN_DECIMALS,
    DeployConfig,
    DeployError,
    deploy,
    load_deployment,
)
from contracts.node import DEV_CHAIN_IDS, NodeError, TxSender, connect
from contracts.relayer import Relayer, bridge_contract
from core.platform.config import get_settings

contracts_app = typer.Typer(help="Smart contracts: build and deploy.", no_args_is_help=True)
bridge_app = typer.Typer(help="Token bridge between two chains.", no_args_is_help=True)

console = Console()
err = Console(stderr=True)

DeploymentsDir = Annotated[
    Path | None,
    typer.Option(
        help="Where deployment files (<chain id>.json) are read and written "
        "[default: STRIDE_CONTRACT_DEPLOYMENTS_DIR, else contracts/deployments]."
    ),
]


@bridge_app.callback()
def bridge_callback() -> None:
    """Token bridge between two chains (lock/mint, burn/release)."""


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _sender(w3_url: str, key: str | None, what: str) -> TxSender:
    w3 = connect(w3_url)
    if key:
        return TxSender.from_key(w3, key)
    if w3.eth.chain_id in DEV_CHAIN_IDS:
        console.print(f"[yellow]{what}: no key set, using the dev node's unlocked account 0[/]")
        return TxSender.dev_account(w3)
    raise NodeError(f"{what}: no private key in the environment for chain {w3.eth.chain_id}")


@contracts_app.command("build")
def build_command(
    check: Annotated[
        bool, typer.Option("--check", help="Only compare with the committed artifacts.")
    ] = False,
) -> None:
    """Compile contracts/src with solc-js (standard JSON) into contracts/artifacts."""
    try:
        with console.status("compiling with solc-js..."):
            result = build(check=check)
    except BuildError as exc:
        _fail(str(exc))
    for warning in result.warnings:
        err.print(warning)
    if check:
        if result.stale:
            _fail("stale artifacts: " + ", ".join(result.stale) + "; run `stride contracts build`")
        console.print(f"[green]artifacts are up to date[/] (solc {result.compiler_version})")
        return
    console.print(
        f"[green]compiled {len(result.artifacts)} contracts[/] with solc "
        f"{result.compiler_version}; changed: {', '.join(result.stale) or 'none'}"
    )


@contracts_app.command("deploy")
def deploy_command(
    rpc: Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of the target chain.")],
    chain_id: Annotated[
        int | None,
        typer.Option(help="Expected chain id; required unless the node is a local dev chain."),
    ] = None,
    bridge_mode: Annotated[
        str, typer.Option(help="lock (home chain of the token) or mint (bridged copy).")
    ] = "lock",
    bridge_peer: Annotated[
        list[int] | None, typer.Option(help="Chain id the bridge talks to (repeatable).")
    ] = None,
    validator: Annotated[
        list[str] | None, typer.Option(help="Bridge validator address (repeatable).")
    ] = None,
    threshold: Annotated[int, typer.Option(help="Validator signatures needed.")] = 1,
    rate_limit: Annotated[
        int, typer.Option(help="Bridge inbound limit per day, in whole tokens.")
    ] = 1_000_000,
    admin: Annotated[
        str | None, typer.Option(help="Final admin (e.g. a multisig); default: the deployer.")
    ] = None,
    rewards_minter: Annotated[
        str | None, typer.Option(help="Rewards relayer address granted MINTER_ROLE.")
    ] = None,
    rewards_sender: Annotated[
        str | None,
        typer.Option(help="The chain writer's address (SENDER_ROLE on the distributor)."),
    ] = None,
    treasury: Annotated[str | None, typer.Option(help="Marketplace fee receiver.")] = None,
    fee_bps: Annotated[int, typer.Option(help="Marketplace fee in basis points.")] = 250,
    royalty_bps: Annotated[int, typer.Option(help="Default item royalty, basis points.")] = 500,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Deploy again even if a live deployment exists.")
    ] = False,
    deployments_dir: DeploymentsDir = None,
) -> None:
    """Deploy token, items, vault, marketplace, bridge and the rewards distributor; grant,
    verify, record addresses.

    The key comes from STRIDE_DEPLOYER_PRIVATE_KEY. On a local dev chain without a key the
    node's unlocked account is used.
    """
    if bridge_mode not in ("lock", "mint"):
        _fail("--bridge-mode must be lock or mint")
    settings = get_settings()
    deployments_dir = deployments_dir or settings.deployments_dir
    key = settings.deployer_private_key
    try:
        sender = _sender(rpc, key.get_secret_value() if key else None, "deploy")
        actual = sender.w3.eth.chain_id
        if chain_id is None and actual not in DEV_CHAIN_IDS:
            _fail(f"{rpc} serves chain {actual}: pass --chain-id {actual} to confirm the network")
        config = DeployConfig(
            admin=admin,
            rewards_minter=rewards_minter,
            rewards_sender=rewards_sender,
            treasury=treasury,
            market_fee_bps=fee_bps,
            royalty_bps=royalty_bps,
            bridge_mode=bridge_mode,  # type: ignore[arg-type]
            bridge_validators=validator or [],
            bridge_threshold=threshold,
            bridge_peers=bridge_peer or [],
            bridge_rate_limit=rate_limit * TOKEN_DECIMALS,
        )
        with console.status("deploying...") as status:

            def report(message: str) -> None:
                status.update(message)
                console.log(message)

            deployment = deploy(
                sender,
                config,
                expected_chain_id=chain_id,
                directory=deployments_dir,
                reuse=not fresh,
                report=report,
            )
    except (NodeError, DeployError, ValueError) as exc:
        _fail(str(exc))
    table = Table(title=f"Stride contracts on chain {deployment.chain_id}")
    table.add_column("contract")
    table.add_column("address")
    for name, record in deployment.contracts.items():
        table.add_row(name, record["address"])
    console.print(table)
    console.print(f"recorded in {deployments_dir / f'{deployment.chain_id}.json'}")


@bridge_app.command("relay")
def relay_command(
    rpc_a: Annotated[str, typer.Option("--rpc-a", help="JSON-RPC URL of the first chain.")],
    rpc_b: Annotated[str, typer.Option("--rpc-b", help="JSON-RPC URL of the second chain.")],
    once: Annotated[
        bool, typer.Option("--once", help="One pass in each direction, then exit.")
    ] = False,
    poll_interval: Annotated[float, typer.Option(help="Seconds between passes.")] = 2.0,
    confirmations: Annotated[
        int, typer.Option(help="Blocks to wait before relaying (reorg safety).")
    ] = 0,
    deployments_dir: DeploymentsDir = None,
) -> None:
    """Watch BridgeOut on both chains and complete each transfer on the other one.

    Validator keys: STRIDE_BRIDGE_VALIDATOR_KEYS (comma-separated); transaction key:
    STRIDE_RELAYER_PRIVATE_KEY (local dev chains fall back to an unlocked account).
    """
    settings = get_settings()
    deployments_dir = deployments_dir or settings.deployments_dir
    raw_keys = settings.bridge_validator_keys
    validators = [
        Account.from_key(k.strip())
        for k in (raw_keys.get_secret_value() if raw_keys else "").split(",")
        if k.strip()
    ]
    if not validators:
        _fail("set STRIDE_BRIDGE_VALIDATOR_KEYS (comma-separated validator private keys)")
    relayer_key = settings.relayer_private_key
    try:
        relayers = _relayers(
            rpc_a,
            rpc_b,
            validators,
            relayer_key.get_secret_value() if relayer_key else None,
            confirmations,
            deployments_dir,
        )
        while True:
            for relayer in relayers:
                for outcome in relayer.relay_once():
                    t = outcome.transfer
                    console.log(
                        f"{t.src_chain_id}->{t.dst_chain_id} nonce {t.nonce} "
                        f"{t.amount / TOKEN_DECIMALS:g} to {t.recipient}: {outcome.status} "
                        f"{outcome.detail}"
                    )
            if once:
                return
            time.sleep(poll_interval)
    except (NodeError, DeployError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        console.print("relayer stopped")


def _relayers(
    rpc_a: str,
    rpc_b: str,
    validators: list[LocalAccount],
    key: str | None,
    confirmations: int,
    deployments_dir: Path,
) -> list[Relayer]:
    sides = []
    for url in (rpc_a, rpc_b):
        sender = _sender(url, key, "relay")
        deployment = load_deployment(sender.w3.eth.chain_id, deployments_dir)
        if deployment is None:
            raise DeployError(
                f"no deployment recorded for chain {sender.w3.eth.chain_id} in {deployments_dir};"
                " run `stride contracts deploy` first"
            )
        record = deployment.contracts["StrideBridge"]
        sides.append((sender, bridge_contract(sender.w3, record["address"]), record["block"]))
    (sender_a, bridge_a, block_a), (sender_b, bridge_b, block_b) = sides
    ids = (sender_a.w3.eth.chain_id, sender_b.w3.eth.chain_id)
    return [
        Relayer(
            bridge_a,
            bridge_b,
            validators,
            sender_b,
            start_block=block_a,
            confirmations=confirmations,
            checkpoint=deployments_dir / f"relay-{ids[0]}-{ids[1]}.json",
        ),
        Relayer(
            bridge_b,
            bridge_a,
            validators,
            sender_a,
            start_block=block_b,
            confirmations=confirmations,
            checkpoint=deployments_dir / f"relay-{ids[1]}-{ids[0]}.json",
        ),
    ]
