"""Fixtures for the contract tests: two real anvil chains (ids 31337 and 31338) on free
loopback ports, the Stride contracts deployed once per session by the real deploy code,
and an EVM snapshot taken before every test and reverted after it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError

from cli.stack import free_port
from contracts.anvil import running_anvil
from contracts.artifacts import ARTIFACTS_DIR, load_artifact
from contracts.deploy import DeployConfig, Deployment, deploy
from contracts.node import TxSender

CHAIN_A = 31337
CHAIN_B = 31338
E18 = 10**18


@dataclass
class Node:
    chain_id: int
    url: str
    w3: Web3


_NODES: list[Node] = []


@contextmanager
def _node(chain_id: int) -> Iterator[Node]:
    with running_anvil(free_port(), chain_id, auto_impersonate=True) as url:
        node = Node(chain_id, url, Web3(Web3.HTTPProvider(url)))
        _NODES.append(node)
        try:
            yield node
        finally:
            _NODES.remove(node)


@pytest.fixture(scope="session")
def node_a() -> Iterator[Node]:
    with _node(CHAIN_A) as node:
        yield node


@pytest.fixture(scope="session")
def node_b() -> Iterator[Node]:
    with _node(CHAIN_B) as node:
        yield node


@pytest.fixture(autouse=True)
def evm_snapshot() -> Iterator[None]:
    """Every chain started so far is reverted to its state before the test."""
    snapshots = [(n, n.w3.provider.make_request("evm_snapshot", [])["result"]) for n in _NODES]
    yield
    for node, snapshot in snapshots:
        assert node.w3.provider.make_request("evm_revert", [snapshot])["result"]


def fund(w3: Web3, address: str, wei: int = 1_000 * E18) -> None:
    w3.provider.make_request("anvil_setBalance", [address, hex(wei)])


@pytest.fixture(scope="session")
def accounts() -> SimpleNamespace:
    """Fresh keys for every role; nothing is hard-coded."""
    names = [
        "deployer",
        "minter",
        "treasury",
        "alice",
        "bob",
        "carol",
        "v1",
        "v2",
        "v3",
        "v4",
        "writer",
    ]
    return SimpleNamespace(**{name: Account.create() for name in names})


def validators_of(accounts: SimpleNamespace) -> list[LocalAccount]:
    return [accounts.v1, accounts.v2, accounts.v3]


def _deploy(node: Node, accounts: SimpleNamespace, directory: Path, mode: str) -> Deployment:
    for account in vars(accounts).values():
        fund(node.w3, account.address)
    peer = CHAIN_B if node.chain_id == CHAIN_A else CHAIN_A
    config = DeployConfig(
        rewards_minter=accounts.minter.address,
        rewards_sender=accounts.writer.address,
        treasury=accounts.treasury.address,
        bridge_mode=mode,  # type: ignore[arg-type]
        bridge_validators=[v.address for v in validators_of(accounts)],
        bridge_threshold=2,
        bridge_peers=[peer],
        bridge_rate_limit=1_000 * E18,
    )
    sender = TxSender.from_key(node.w3, accounts.deployer.key.hex())
    return deploy(sender, config, expected_chain_id=node.chain_id, directory=directory)


@pytest.fixture(scope="session")
def deployments_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deployments")


@pytest.fixture(scope="session")
def deployment_a(node_a: Node, accounts: SimpleNamespace, deployments_dir: Path) -> Deployment:
    return _deploy(node_a, accounts, deployments_dir, "lock")


@pytest.fixture(scope="session")
def deployment_b(node_b: Node, accounts: SimpleNamespace, deployments_dir: Path) -> Deployment:
    return _deploy(node_b, accounts, deployments_dir, "mint")


def contracts_of(w3: Web3, deployment: Deployment) -> SimpleNamespace:
    return SimpleNamespace(
        token=deployment.contract(w3, "StrideToken"),
        items=deployment.contract(w3, "StrideItems"),
        vault=deployment.contract(w3, "OmnibusVault"),
        market=deployment.contract(w3, "StrideMarketplace"),
        bridge=deployment.contract(w3, "StrideBridge"),
        distributor=deployment.contract(w3, "StrideRewardsDistributor"),
    )


@pytest.fixture(scope="session")
def c(node_a: Node, deployment_a: Deployment) -> SimpleNamespace:
    """The contracts on chain A."""
    return contracts_of(node_a.w3, deployment_a)


@pytest.fixture
def w3(node_a: Node) -> Web3:
    return node_a.w3


# ---- helpers ---------------------------------------------------------------------------


def send(fn: Any, sender: str | LocalAccount, value: int = 0) -> Any:
    """Transact as `sender` (anvil auto-impersonates) and return the mined receipt."""
    address = sender if isinstance(sender, str) else sender.address
    w3: Web3 = fn.w3
    params = {"from": address, "value": value}
    # Estimation surfaces the custom revert error. The limit itself is generous: the mined
    # block's timestamp can be later than the one gas was estimated at, and time-dependent
    # paths (a claim that now pays) cost more. gasUsed does not depend on the limit.
    fn.estimate_gas(params)
    tx_hash = fn.transact({**params, "gas": 10_000_000})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 1, f"{fn.fn_name} by {address} reverted after estimation"
    return receipt


def deploy_artifact(w3: Web3, name: str, sender: str, *args: Any) -> Contract:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor(*args).transact({"from": sender})
    )
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)


def _error_selectors() -> dict[str, set[str]]:
    selectors: dict[str, set[str]] = {}
    for path in ARTIFACTS_DIR.glob("*.json"):
        for item in load_artifact(path.stem).abi:
            if item.get("type") == "error":
                signature = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
                selector = Web3.keccak(text=signature)[:4].hex()
                selectors.setdefault(item["name"], set()).add(selector.removeprefix("0x"))
    return selectors


ERROR_SELECTORS = _error_selectors()


@contextmanager
def reverts(error: str) -> Iterator[None]:
    """Expect the block to revert with the custom error named `error`."""
    assert error in ERROR_SELECTORS, f"no custom error named {error} in the artifacts"
    try:
        yield
    except (ContractCustomError, ContractLogicError) as exc:
        data = exc.data if isinstance(exc.data, str) else ""
        selector = data.removeprefix("0x")[:8]
        assert selector in ERROR_SELECTORS[error], f"reverted with {exc!r}, expected {error}"
    else:
        pytest.fail(f"did not revert (expected {error})")


def set_next_timestamp(w3: Web3, timestamp: int) -> None:
    w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])


def mine_at(w3: Web3, timestamp: int) -> None:
    w3.provider.make_request("evm_mine", [timestamp])


def now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def role(contract: Contract, name: str) -> bytes:
    return getattr(contract.functions, name)().call()


MintItem = Callable[..., int]


@pytest.fixture
def mint_item(c: SimpleNamespace, accounts: SimpleNamespace) -> MintItem:
    """Mint a StrideItems token to `to` as the rewards minter; returns its id."""

    def mint(to: str, name: str = "Sword", traits: list[tuple[str, str]] | None = None) -> int:
        token_id = c.items.functions.nextTokenId().call()
        send(
            c.items.functions.mint(to, name, "ipfs://img", traits or [("rarity", "rare")]),
            accounts.minter,
        )
        return token_id

    return mint
