"""Deploy the Stride contracts to one chain, grant and verify roles, record the addresses.

Owns the deployment recipe (what is deployed, wired and granted) and the per-chain
deployment file ``contracts/deployments/<chain id>.json`` that services read addresses from.
Re-running against a chain with a recorded deployment whose code is still in place reuses it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from contracts.artifacts import CONTRACTS_DIR, load_artifact
from contracts.node import DEV_CHAIN_IDS, NodeError, TxSender, connect

DEPLOYMENTS_DIR = CONTRACTS_DIR / "deployments"
CORE_CONTRACTS = (
    "StrideToken",
    "StrideItems",
    "OmnibusVault",
    "StrideMarketplace",
    "StrideBridge",
    "StrideRewardsDistributor",
)
TOKEN_DECIMALS = 10**18

BridgeMode = Literal["lock", "mint"]


class DeployError(RuntimeError):
    """The deployment cannot go ahead or did not verify; the message says why."""


@dataclass
class DeployConfig:
    """What a deployment wires together. Addresses default to the deployer."""

    admin: str | None = None
    rewards_minter: str | None = None
    # The chain writer's sender: the only caller of StrideRewardsDistributor (SENDER_ROLE).
    rewards_sender: str | None = None
    treasury: str | None = None
    royalty_receiver: str | None = None
    royalty_bps: int = 500
    market_fee_bps: int = 250
    item_stake_weight: int = 100 * TOKEN_DECIMALS
    bridge_mode: BridgeMode = "lock"
    bridge_validators: list[str] = field(default_factory=list)
    bridge_threshold: int = 1
    bridge_peers: list[int] = field(default_factory=list)
    bridge_rate_period: int = 86_400
    bridge_rate_limit: int = 1_000_000 * TOKEN_DECIMALS


@dataclass
class Deployment:
    """Addresses and provenance of one chain's contracts (the deployment file's content)."""

    chain_id: int
    deployer: str
    contracts: dict[str, dict[str, Any]]
    config: dict[str, Any]
    deployed_at: str

    def address(self, name: str) -> str:
        return self.contracts[name]["address"]

    def contract(self, w3: Web3, name: str) -> Contract:
        address = Web3.to_checksum_address(self.address(name))  # the files hold checksummed ones
        return w3.eth.contract(address=address, abi=load_artifact(name).abi)


def _created_address(receipt: TxReceipt) -> ChecksumAddress:
    """The address of the contract a deploy transaction created (web3 types it optional: a
    receipt of any other transaction has none)."""
    address = receipt["contractAddress"]
    if address is None:
        raise NodeError(f"transaction {receipt['transactionHash'].hex()} created no contract")
    return address


def deployment_path(chain_id: int, directory: Path | None = None) -> Path:
    return (directory or DEPLOYMENTS_DIR) / f"{chain_id}.json"


def load_deployment(chain_id: int, directory: Path | None = None) -> Deployment | None:
    """The recorded deployment of `chain_id`, or None when there is none."""
    path = deployment_path(chain_id, directory)
    if not path.exists():
        return None
    return Deployment(**json.loads(path.read_text()))


def save_deployment(deployment: Deployment, directory: Path | None = None) -> Path:
    path = deployment_path(deployment.chain_id, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(deployment), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def deployment_is_live(w3: Web3, deployment: Deployment) -> bool:
    """True when every recorded contract still has the recorded code at its address."""
    for record in deployment.contracts.values():
        code = w3.eth.get_code(Web3.to_checksum_address(record["address"]))
        if not code or Web3.keccak(code).hex() != record["codeHash"]:
            return False
    return True


def check_chain_id(w3: Web3, expected: int | None) -> int:
    """The node's chain id; refuses when it differs from `expected`."""
    actual = w3.eth.chain_id
    if expected is not None and actual != expected:
        raise DeployError(
            f"the RPC endpoint serves chain id {actual}, not {expected}: wrong URL or network"
        )
    return actual


def deploy(
    sender: TxSender,
    config: DeployConfig,
    *,
    expected_chain_id: int | None = None,
    directory: Path | None = None,
    reuse: bool = True,
    save: bool = True,
    report: Callable[[str], None] = lambda _m: None,
) -> Deployment:
    """Deploy and wire every core contract (or reuse a live recorded deployment)."""
    w3 = sender.w3
    chain_id = check_chain_id(w3, expected_chain_id)
    if reuse:
        existing = load_deployment(chain_id, directory)
        if existing is not None and deployment_is_live(w3, existing):
            wanted_sender = config.rewards_sender and Web3.to_checksum_address(
                config.rewards_sender
            )
            recorded_sender = existing.config.get("rewards_sender")
            if "StrideRewardsDistributor" in existing.contracts and (
                not wanted_sender or wanted_sender == recorded_sender
            ):
                report(f"chain {chain_id}: reusing the recorded deployment")
                return existing
            if existing.deployer == sender.address:
                # Recorded before the distributor existed, or for another writer sender:
                # add (or replace) only the distributor, keeping the token and its balances.
                return _add_distributor(sender, existing, config, directory, save, report)
    me = sender.address
    admin = Web3.to_checksum_address(config.admin or me)
    minter = Web3.to_checksum_address(config.rewards_minter or me)
    treasury = Web3.to_checksum_address(config.treasury or admin)
    royalty_receiver = Web3.to_checksum_address(config.royalty_receiver or treasury)
    validators = [Web3.to_checksum_address(v) for v in config.bridge_validators] or [admin]
    records: dict[str, dict[str, Any]] = {}

    def deploy_one(name: str, *args: Any) -> Contract:
        report(f"chain {chain_id}: deploying {name}")
        artifact = load_artifact(name)
        receipt = sender.deploy(artifact.abi, artifact.bytecode, *args)
        address = _created_address(receipt)
        records[name] = {
            "address": address,
            "block": receipt["blockNumber"],
            "txHash": receipt["transactionHash"].hex(),
            "codeHash": Web3.keccak(w3.eth.get_code(address)).hex(),
        }
        return w3.eth.contract(address=address, abi=artifact.abi)

    bridged = config.bridge_mode == "mint"
    rewards_sender = Web3.to_checksum_address(config.rewards_sender or minter)
    token = deploy_one("StrideToken", "Stride (bridged)" if bridged else "Stride", "STRIDE", me)
    items = deploy_one("StrideItems", me, royalty_receiver, config.royalty_bps)
    vault = deploy_one("OmnibusVault", token.address, me)
    market = deploy_one("StrideMarketplace", token.address, me, treasury, config.market_fee_bps)
    bridge = deploy_one(
        "StrideBridge",
        token.address,
        1 if bridged else 0,
        me,
        validators,
        config.bridge_threshold,
        config.bridge_rate_period,
        config.bridge_rate_limit,
    )
    distributor = deploy_one("StrideRewardsDistributor", token.address, me, rewards_sender)

    report(f"chain {chain_id}: granting roles")
    minter_role = token.functions.MINTER_ROLE().call()
    sender.call(token.functions.grantRole(minter_role, minter))
    sender.call(token.functions.grantRole(minter_role, distributor.address))
    sender.call(items.functions.grantRole(items.functions.MINTER_ROLE().call(), minter))
    if bridged:
        sender.call(token.functions.grantRole(minter_role, bridge.address))
    sender.call(vault.functions.setCollectionWeight(items.address, config.item_stake_weight))
    for peer in config.bridge_peers:
        sender.call(bridge.functions.setPeerChain(peer, True))
    admin_contracts = (token, items, vault, market, bridge, distributor)
    if admin != me:
        _hand_over_admin(sender, admin_contracts, admin)

    deployment = Deployment(
        chain_id=chain_id,
        deployer=me,
        contracts=records,
        config={
            **asdict(config),
            "admin": admin,
            "rewards_minter": minter,
            "rewards_sender": rewards_sender,
            "treasury": treasury,
            "royalty_receiver": royalty_receiver,
            "bridge_validators": validators,
        },
        deployed_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    report(f"chain {chain_id}: verifying roles and wiring")
    problems = verify_deployment(w3, deployment)
    if problems:
        raise DeployError("deployment did not verify:\n- " + "\n- ".join(problems))
    if save:
        save_deployment(deployment, directory)
    return deployment


def _fund_on_dev_chain(w3: Web3, address: str, minimum_wei: int = 100 * TOKEN_DECIMALS) -> None:
    """Give `address` gas money on a local dev chain (anvil) when it has little."""
    if w3.eth.get_balance(Web3.to_checksum_address(address)) < minimum_wei:
        w3.provider.make_request(
            "anvil_setBalance",  # type: ignore[arg-type]
            [address, hex(10_000 * TOKEN_DECIMALS)],
        )


def _add_distributor(
    sender: TxSender,
    existing: Deployment,
    config: DeployConfig,
    directory: Path | None,
    save: bool,
    report: Callable[[str], None],
) -> Deployment:
    """Deploy StrideRewardsDistributor beside a live deployment and give it MINTER_ROLE."""
    w3 = sender.w3
    chain_id = existing.chain_id
    rewards_sender = Web3.to_checksum_address(
        config.rewards_sender or existing.config.get("rewards_minter") or sender.address
    )
    report(f"chain {chain_id}: deploying StrideRewardsDistributor beside the recorded contracts")
    artifact = load_artifact("StrideRewardsDistributor")
    token = existing.contract(w3, "StrideToken")
    receipt = sender.deploy(
        artifact.abi, artifact.bytecode, token.address, sender.address, rewards_sender
    )
    address = _created_address(receipt)
    sender.call(token.functions.grantRole(token.functions.MINTER_ROLE().call(), address))
    old = existing.contracts.get("StrideRewardsDistributor")
    if old is not None:  # the replaced distributor may no longer mint
        sender.call(
            token.functions.revokeRole(token.functions.MINTER_ROLE().call(), old["address"])
        )
    admin = existing.config["admin"]
    distributor = w3.eth.contract(address=address, abi=artifact.abi)
    if admin != sender.address:
        _hand_over_admin(sender, (distributor,), admin)
    deployment = Deployment(
        chain_id=chain_id,
        deployer=existing.deployer,
        contracts={
            **existing.contracts,
            "StrideRewardsDistributor": {
                "address": address,
                "block": receipt["blockNumber"],
                "txHash": receipt["transactionHash"].hex(),
                "codeHash": Web3.keccak(w3.eth.get_code(address)).hex(),
            },
        },
        config={**existing.config, "rewards_sender": rewards_sender},
        deployed_at=existing.deployed_at,
    )
    problems = verify_deployment(w3, deployment)
    if problems:
        raise DeployError("deployment did not verify:\n- " + "\n- ".join(problems))
    if save:
        save_deployment(deployment, directory)
    return deployment


def _hand_over_admin(sender: TxSender, contracts: tuple[Contract, ...], admin: str) -> None:
    """Give `admin` every operator role a contract has, then drop the deployer's."""
    for contract in contracts:
        names = {item.get("name") for item in contract.abi}
        roles = [
            getattr(contract.functions, name)().call()
            for name in ("PAUSER_ROLE", "REWARDS_DISTRIBUTOR_ROLE", "DEFAULT_ADMIN_ROLE")
            if name in names
        ]
        for role in roles:
            sender.call(contract.functions.grantRole(role, admin))
        for role in roles:
            sender.call(contract.functions.renounceRole(role, sender.address))


def verify_deployment(w3: Web3, deployment: Deployment) -> list[str]:
    """Read roles and wiring back from the chain; return every mismatch (empty when sound)."""
    cfg = deployment.config
    token = deployment.contract(w3, "StrideToken")
    items = deployment.contract(w3, "StrideItems")
    vault = deployment.contract(w3, "OmnibusVault")
    market = deployment.contract(w3, "StrideMarketplace")
    bridge = deployment.contract(w3, "StrideBridge")
    distributor = deployment.contract(w3, "StrideRewardsDistributor")
    admin = cfg["admin"]
    problems: list[str] = []

    def expect(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    token_minter = token.functions.MINTER_ROLE().call()
    expect(
        token.functions.hasRole(token_minter, cfg["rewards_minter"]).call(),
        "rewards minter lacks MINTER_ROLE on StrideToken",
    )
    expect(
        items.functions.hasRole(items.functions.MINTER_ROLE().call(), cfg["rewards_minter"]).call(),
        "rewards minter lacks MINTER_ROLE on StrideItems",
    )
    bridge_can_mint = token.functions.hasRole(token_minter, bridge.address).call()
    expect(
        bridge_can_mint == (cfg["bridge_mode"] == "mint"),
        "bridge MINTER_ROLE on the token does not match the bridge mode",
    )
    expect(
        token.functions.hasRole(token_minter, distributor.address).call(),
        "StrideRewardsDistributor lacks MINTER_ROLE on StrideToken",
    )
    expect(distributor.functions.token().call() == token.address, "distributor token")
    expect(
        distributor.functions.hasRole(
            distributor.functions.SENDER_ROLE().call(), cfg.get("rewards_sender")
        ).call(),
        "the chain writer's sender lacks SENDER_ROLE on StrideRewardsDistributor",
    )
    for contract in (token, items, vault, market, bridge, distributor):
        role = contract.functions.DEFAULT_ADMIN_ROLE().call()
        expect(
            contract.functions.hasRole(role, admin).call(),
            f"{admin} is not admin of {contract.address}",
        )
        if admin != deployment.deployer:
            expect(
                not contract.functions.hasRole(role, deployment.deployer).call(),
                f"deployer still admin of {contract.address}",
            )
    expect(vault.functions.stakingToken().call() == token.address, "vault staking token")
    expect(
        vault.functions.collectionWeight(items.address).call() == cfg["item_stake_weight"],
        "vault does not accept StrideItems with the configured weight",
    )
    expect(market.functions.paymentToken().call() == token.address, "market payment token")
    expect(market.functions.treasury().call() == cfg["treasury"], "market treasury")
    expect(bridge.functions.token().call() == token.address, "bridge token")
    expect(
        sorted(bridge.functions.validators().call()) == sorted(cfg["bridge_validators"]),
        "bridge validator set",
    )
    expect(bridge.functions.threshold().call() == cfg["bridge_threshold"], "bridge threshold")
    for peer in cfg["bridge_peers"]:
        expect(bridge.functions.peerChain(peer).call(), f"bridge does not trust chain {peer}")
    return problems


def ensure_local_deployment(
    rpc_url: str,
    chain_id: int,
    private_key: str | None = None,
    report: Callable[[str], None] = lambda _m: None,
    directory: Path | None = None,
    rewards_sender: str | None = None,
) -> Deployment:
    """Deploy to the local dev chain unless its recorded deployment is still live.

    Used by ``stride up`` after anvil is ready. Signs with `private_key` when given, else
    with the node's first unlocked account (dev chains only). `rewards_sender` (the chain
    writer's address) gets SENDER_ROLE on the distributor and, on a dev chain, gas money.
    """
    try:
        w3 = connect(rpc_url)
        sender = TxSender.from_key(w3, private_key) if private_key else TxSender.dev_account(w3)
        deployment = deploy(
            sender,
            DeployConfig(rewards_sender=rewards_sender),
            expected_chain_id=chain_id,
            directory=directory,
            report=report,
        )
        if rewards_sender and chain_id in DEV_CHAIN_IDS:
            _fund_on_dev_chain(w3, rewards_sender)
    except NodeError as exc:
        raise DeployError(str(exc)) from exc
    report(
        f"contracts on chain {chain_id}: StrideToken at {deployment.address('StrideToken')} "
        f"(addresses in {deployment_path(chain_id, directory)})"
    )
    return deployment
