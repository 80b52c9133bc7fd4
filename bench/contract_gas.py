"""Gas table of the main contract operations, measured on a throw-away anvil.

Compares the game items (ERC721 with on-chain metadata) against a plain OpenZeppelin ERC721,
an ERC721A-style batch-minting contract and ERC1155, and measures token, vault, marketplace
and bridge operations. Prints a table and writes ``bench/results/contract_gas.json``.
Run: ``python -m bench.contract_gas``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eth_account import Account
from rich.console import Console
from rich.table import Table
from web3 import Web3
from web3.contract import Contract

from cli.stack import free_port
from contracts.anvil import running_anvil
from contracts.artifacts import ARTIFACTS_DIR, load_artifact
from contracts.deploy import DeployConfig, deploy
from contracts.node import TxSender
from contracts.relayer import BridgeTransfer, collect_signatures

RESULTS = Path(__file__).resolve().parent / "results" / "contract_gas.json"
E18 = 10**18
NATIVE = "0x0000000000000000000000000000000000000000"
TRAITS = [("rarity", "epic"), ("slot", "weapon"), ("power", "42")]


class GasMeter:
    """Sends transactions (anvil auto-impersonates senders) and records gas used."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self.rows: list[dict[str, Any]] = []

    def tx(self, fn: Any, sender: str, value: int = 0) -> Any:
        tx_hash = fn.transact({"from": sender, "value": value, "gas": 5_000_000})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        if receipt["status"] != 1:
            raise RuntimeError(f"{fn.fn_name} reverted")
        return receipt

    def measure(
        self, group: str, operation: str, fn: Any, sender: str, value: int = 0, per: int = 1
    ) -> Any:
        receipt = self.tx(fn, sender, value)
        gas = receipt["gasUsed"]
        self.rows.append(
            {"group": group, "operation": operation, "gas": gas, "per_item": gas // per}
        )
        return receipt

    def deploy(self, name: str, sender: str, *args: Any) -> Contract:
        artifact = load_artifact(name)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = self.tx(factory.constructor(*args), sender)
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)


def _nft_comparison(m: GasMeter, items: Contract, admin: str, alice: str) -> None:
    """Same conditions for every standard: mint to an account, then transfer from an owner
    holding several tokens to an address that holds none (a fresh account)."""

    def fresh() -> str:
        return Account.create().address

    g = "ERC721 items (on-chain metadata)"
    m.measure(
        g,
        "mint 1 (3 traits)",
        items.functions.mint(alice, "Sword of Dawn", "ipfs://bafy/sword.png", TRAITS),
        admin,
    )
    m.measure(
        g, "mint 1 (no traits)", items.functions.mint(alice, "Sword", "ipfs://s.png", []), admin
    )
    m.tx(items.functions.mint(alice, "Shield", "ipfs://bafy/shield.png", TRAITS), admin)
    m.measure(g, "transferFrom", items.functions.transferFrom(alice, fresh(), 3), alice)

    plain = m.deploy("PlainERC721", admin)
    g = "ERC721 plain (OpenZeppelin)"
    m.measure(g, "mint 1", plain.functions.mint(alice, 1), admin)
    m.measure(g, "mint 10", plain.functions.mint(alice, 10), admin, per=10)
    m.measure(g, "transferFrom", plain.functions.transferFrom(alice, fresh(), 5), alice)

    erc721a = m.deploy("MinimalERC721A", admin)
    g = "ERC721A-style"
    m.measure(g, "mint 1", erc721a.functions.mint(alice, 1), admin)
    m.measure(g, "mint 10", erc721a.functions.mint(alice, 10), admin, per=10)
    m.measure(
        g, "transferFrom (first of batch)", erc721a.functions.transferFrom(alice, fresh(), 2), alice
    )
    m.measure(
        g,
        "transferFrom (middle of batch)",
        erc721a.functions.transferFrom(alice, fresh(), 7),
        alice,
    )

    multi = m.deploy("Items1155", admin)
    g = "ERC1155 (OpenZeppelin)"
    m.measure(g, "mint 1", multi.functions.mint(alice, 1), admin)
    m.measure(g, "mint 10 (batch)", multi.functions.mint(alice, 10), admin, per=10)
    m.measure(
        g, "safeTransferFrom", multi.functions.safeTransferFrom(alice, fresh(), 5, 1, b""), alice
    )


def run() -> dict[str, Any]:
    """Deploy everything on a fresh anvil and measure; returns the result document."""
    with running_anvil(free_port(), 31337, auto_impersonate=True) as url:
        w3 = Web3(Web3.HTTPProvider(url))
        m = GasMeter(w3)
        admin, alice, bob = w3.eth.accounts[0], w3.eth.accounts[1], w3.eth.accounts[2]
        validators = sorted((Account.create() for _ in range(3)), key=lambda a: int(a.address, 16))
        deployment = deploy(
            TxSender.dev_account(w3),
            DeployConfig(
                bridge_mode="mint",
                bridge_validators=[v.address for v in validators],
                bridge_threshold=2,
                bridge_peers=[31338],
            ),
            reuse=False,
            save=False,
        )
        token = deployment.contract(w3, "StrideToken")
        items = deployment.contract(w3, "StrideItems")
        vault = deployment.contract(w3, "OmnibusVault")
        market = deployment.contract(w3, "StrideMarketplace")
        bridge = deployment.contract(w3, "StrideBridge")

        _nft_comparison(m, items, admin, alice)

        g = "StrideToken"
        m.measure(g, "mint", token.functions.mint(alice, 1_000 * E18), admin)
        m.measure(g, "transfer", token.functions.transfer(bob, 10 * E18), alice)
        m.measure(g, "approve", token.functions.approve(admin, 10 * E18), alice)
        m.measure(g, "burnFrom (allowance)", token.functions.burnFrom(alice, 10 * E18), admin)

        g = "OmnibusVault"
        m.tx(token.functions.mint(admin, 1_000 * E18), admin)
        m.tx(token.functions.approve(vault.address, 2**256 - 1), admin)
        m.tx(token.functions.approve(vault.address, 2**256 - 1), alice)
        m.measure(
            g,
            "notifyRewardAmount",
            vault.functions.notifyRewardAmount(700 * E18, 7 * 86_400),
            admin,
        )
        m.measure(g, "stake (first)", vault.functions.stake(100 * E18), alice)
        m.measure(g, "stake (again)", vault.functions.stake(100 * E18), alice)
        m.measure(
            g,
            "stake NFT (safeTransferFrom)",
            items.functions.safeTransferFrom(alice, vault.address, 2),
            alice,
        )
        w3.provider.make_request("evm_increaseTime", [3_600])
        w3.provider.make_request("evm_mine", [])
        m.measure(g, "claim", vault.functions.claim(), alice)
        m.measure(g, "withdraw", vault.functions.withdraw(50 * E18), alice)
        m.measure(g, "withdraw NFT", vault.functions.withdrawNft(items.address, 2), alice)

        g = "StrideMarketplace"
        expiry = w3.eth.get_block("latest")["timestamp"] + 86_400
        m.tx(items.functions.setApprovalForAll(market.address, True), alice)
        m.tx(token.functions.approve(market.address, 2**256 - 1), bob)
        m.tx(token.functions.mint(bob, 1_000 * E18), admin)
        m.measure(g, "list", market.functions.list(items.address, 1, NATIVE, E18, expiry), alice)
        m.measure(g, "buy (native, fee + royalty)", market.functions.buy(1), bob, value=E18)
        m.tx(items.functions.setApprovalForAll(market.address, True), bob)
        m.tx(market.functions.list(items.address, 1, token.address, 5 * E18, expiry), bob)
        m.tx(token.functions.approve(market.address, 2**256 - 1), alice)
        m.measure(g, "buy (game token, fee + royalty)", market.functions.buy(2), alice)
        m.measure(
            g, "makeOffer", market.functions.makeOffer(items.address, 2, 7 * E18, expiry), bob
        )
        m.measure(g, "acceptOffer", market.functions.acceptOffer(1), alice)
        terms = (alice, expiry, False, NATIVE, items.address, 1, 0, items.address, 2, E18)
        m.measure(g, "proposeSwap", market.functions.proposeSwap(terms), alice)
        m.measure(g, "acceptSwap (NFT + tokens for NFT)", market.functions.acceptSwap(1), bob)

        g = "StrideBridge (mint/burn side)"
        transfer = BridgeTransfer(31338, 31337, 1, alice, alice, 50 * E18, 0)
        sigs = collect_signatures(validators[:2], transfer, bridge.address)
        m.measure(
            g,
            "bridgeIn, 2-of-3 signatures (mint)",
            bridge.functions.bridgeIn(transfer.as_struct(), sigs),
            bob,
        )
        m.tx(token.functions.approve(bridge.address, 2**256 - 1), alice)
        m.measure(
            g, "bridgeOut (burnFrom)", bridge.functions.bridgeOut(31338, alice, 10 * E18), alice
        )
        transfer3 = BridgeTransfer(31338, 31337, 2, alice, alice, E18, 0)
        sigs3 = collect_signatures(validators, transfer3, bridge.address)
        m.measure(
            g,
            "bridgeIn, 3-of-3 signatures (mint)",
            bridge.functions.bridgeIn(transfer3.as_struct(), sigs3),
            bob,
        )
        compiler = json.loads((ARTIFACTS_DIR / "StrideToken.json").read_text())["compiler"]
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "node": "anvil (local), one run; gas is deterministic for a given state",
        "compiler": compiler,
        "rows": m.rows,
    }


def main() -> None:
    result = run()
    table = Table(title="Stride contracts: gas used per transaction")
    for column in ("contract", "operation", "gas", "gas per item"):
        table.add_column(column, justify="right" if column.startswith("gas") else "left")
    for row in result["rows"]:
        table.add_row(row["group"], row["operation"], f"{row['gas']:,}", f"{row['per_item']:,}")
    Console().print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    Console().print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
