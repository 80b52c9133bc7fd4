"""The write flows the real way: the local stack's anvil with the contracts `stride up anvil`
deploys, the API as `stride up` runs it (uvicorn behind nginx, whose per-user quota covers
these routes), app users with linked wallets whose local test keys sign what the API
prepared. Stake an NFT and claim; list it and a second user buys it."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.console import Console
from sqlalchemy.engine import Engine
from web3 import Web3

from cli.demo_web3 import run_web3_demo
from cli.stack import Stack
from contracts.deploy import load_deployment
from contracts.node import TxSender
from core.identity.app_users import create_app_user
from core.identity.wallets import link_wallet
from core.platform.db import session_scope
from tests.streaming_helpers import wait_for

E18 = 10**18


@pytest.fixture(scope="module")
def chain(stack: Stack, db_engine: Engine, live_api: str) -> SimpleNamespace:
    stack.up(["anvil"], report=lambda _m: None)
    settings = stack.settings
    w3 = Web3(Web3.HTTPProvider(settings.evm_url))
    deployment = load_deployment(settings.anvil_chain_id, settings.deployments_dir)
    assert deployment is not None, "stride up anvil records its deployment"
    names = {
        "token": "StrideToken",
        "items": "StrideItems",
        "vault": "OmnibusVault",
        "market": "StrideMarketplace",
    }
    return SimpleNamespace(
        chain_id=settings.anvil_chain_id,
        w3=w3,
        operator=TxSender.dev_account(w3),
        **{key: deployment.contract(w3, name) for key, name in names.items()},
    )


@pytest.fixture(scope="module")
def api(live_api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_api, timeout=30) as client:
        yield client


def new_user(chain: SimpleNamespace) -> SimpleNamespace:
    account = Account.create()
    user_id = f"live-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        token = create_app_user(session, user_id).token
        link_wallet(
            session,
            user_id,
            account.address,
            kind="eoa",
            chain_id=chain.chain_id,
            now=datetime.now(UTC),
        )
    chain.w3.provider.make_request("anvil_setBalance", [account.address, hex(100 * E18)])
    return SimpleNamespace(
        id=user_id, account=account, headers={"Authorization": f"Bearer {token}"}
    )


def sign_and_send(w3: Web3, account: LocalAccount, tx: dict[str, Any]) -> str:
    signed = account.sign_transaction(
        {
            "type": 2,
            "chainId": int(tx["chainId"], 16),
            "to": tx["to"],
            "data": tx["data"],
            "value": int(tx["value"], 16),
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            "gas": int(tx["gas"], 16),
            "maxFeePerGas": int(tx["maxFeePerGas"], 16),
            "maxPriorityFeePerGas": int(tx["maxPriorityFeePerGas"], 16),
        }
    )
    return "0x" + w3.eth.send_raw_transaction(signed.raw_transaction).hex().removeprefix("0x")


def act(
    api: httpx.Client, chain: SimpleNamespace, user: SimpleNamespace, kind: str, **body: Any
) -> dict[str, Any]:
    """Prepare through the front door, sign and send, submit, follow to confirmed."""
    prepared = api.post(
        f"/v1/chain/{chain.chain_id}/actions/{kind}", json=body, headers=user.headers
    )
    assert prepared.status_code == 201, prepared.text
    action = prepared.json()
    for approval in action["approvals"]:
        chain.w3.eth.wait_for_transaction_receipt(
            sign_and_send(chain.w3, user.account, approval["transaction"])
        )
    tx_hash = sign_and_send(chain.w3, user.account, action["transaction"])
    submitted = api.post(
        f"/v1/actions/{action['id']}/submitted", json={"tx_hash": tx_hash}, headers=user.headers
    )
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["tx_hash"] == tx_hash

    def confirmed() -> dict[str, Any] | None:
        body = api.get(f"/v1/actions/{action['id']}", headers=user.headers).json()
        assert body["status"] in ("submitted", "confirmed"), body
        return body if body["status"] == "confirmed" else None

    return wait_for(f"{kind} confirmed", confirmed, timeout=30)


def mint_item(chain: SimpleNamespace, to: str) -> int:
    token_id = int(chain.items.functions.nextTokenId().call())
    chain.operator.call(chain.items.functions.mint(to, "Boots", "ipfs://boots", []))
    return token_id


def test_stake_an_nft_and_claim_through_the_front_door(
    api: httpx.Client, chain: SimpleNamespace
) -> None:
    alice = new_user(chain)
    item = mint_item(chain, alice.account.address)
    staked = act(api, chain, alice, "stake-nft", token_id=str(item))
    assert chain.vault.functions.nftDeposits(chain.items.address, item).call()[0] == (
        alice.account.address
    )
    assert staked["block_number"] is not None
    operator = chain.operator
    operator.call(chain.token.functions.mint(operator.address, 100 * E18))
    operator.call(chain.token.functions.approve(chain.vault.address, 100 * E18))
    operator.call(chain.vault.functions.notifyRewardAmount(100 * E18, 100))
    chain.w3.provider.make_request("evm_increaseTime", [50])
    chain.w3.provider.make_request("evm_mine", [])
    act(api, chain, alice, "claim")
    assert chain.token.functions.balanceOf(alice.account.address).call() > 0


def test_list_then_a_second_user_buys_through_the_front_door(
    api: httpx.Client, chain: SimpleNamespace
) -> None:
    alice, bob = new_user(chain), new_user(chain)
    item = mint_item(chain, alice.account.address)
    listed = act(api, chain, alice, "list", token_id=str(item), price=str(10 * E18))
    assert listed["quote"][0]["seller_receives"] == str(10 * E18 - 10 * E18 * 750 // 10_000)
    listing_id = int(chain.market.functions.listingCount().call())
    refused = api.post(
        f"/v1/chain/{chain.chain_id}/actions/buy",
        json={"listing_id": str(listing_id)},
        headers=bob.headers,
    )
    assert refused.status_code == 422 and refused.json()["code"] == "would_revert"
    assert "ERC20InsufficientBalance" in refused.json()["detail"]
    chain.operator.call(chain.token.functions.mint(bob.account.address, 10 * E18))
    act(api, chain, bob, "buy", listing_id=str(listing_id))
    assert chain.items.functions.ownerOf(item).call() == bob.account.address
    # Only the owner sees an action.
    mine = api.get("/v1/actions", headers=bob.headers).json()["actions"]
    assert [a["kind"] for a in mine] == ["buy"]
    theirs = api.get(f"/v1/actions/{mine[0]['id']}", headers=alice.headers)
    assert theirs.status_code == 404 and theirs.json()["code"] == "action_not_found"


def test_the_web3_demo_runs_its_steps_against_the_stack(
    api: httpx.Client, chain: SimpleNamespace, stack: Stack
) -> None:
    """`stride demo --web3`: sign-in by SIWE, won matches minted by the chain writer, a pack
    bought in the token burned with a signed permit and then in the inventory, stake and
    claim, unstake, list, buy with the earned tokens; the bridge step says why it is skipped
    on a stack with one chain."""
    stack.up(["worker", "writer", "indexer"], report=lambda _m: None)
    out = io.StringIO()
    try:
        run_web3_demo(stack.settings, Console(file=out, width=200))
    finally:
        # The session's other tests expect reward commands to stay as scoring wrote them.
        stack.down(["writer"], report=lambda _m: None)
    text = out.getvalue()
    for step in ("stake-nft", "claim", "unstake-nft", "list", "buy"):
        assert f": {step}[" not in text  # markup rendered, not printed raw
        assert f": {step} —" in text, text
    assert "bob: won 2 matches" in text and "  mint tx 0x" in text, text
    assert "minted by the chain writer; balances API: 20 STRIDE" in text, text
    assert "awaiting_payment, sign at /v1/purchases/" in text, text
    assert "  inventory: 3 x banner-" in text, text
    assert text.count(": confirmed block") == 6, text  # five actions and the burn
    assert "bridge skipped" in text
