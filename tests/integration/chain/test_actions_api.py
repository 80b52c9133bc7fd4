"""The app's write flows end to end on real anvil chains (two, for the bridge) and the real
PostgreSQL: the API prepares and simulates, a local test key signs and sends what it
prepared, the API checks the submitted transaction and follows it to confirmed (or failed
with the decoded reason); every refusal comes back as a 422 with its decoded reason."""

from __future__ import annotations

import html
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from web3 import Web3

from api.main import app, create_app
from contracts.deploy import DeployConfig, Deployment, deploy
from contracts.node import TxSender
from contracts.relayer import Relayer, bridge_contract
from core.identity.app_users import create_app_user
from core.identity.models import AdminRole
from core.identity.wallets import link_wallet
from core.platform.config import get_settings
from core.platform.db import session_scope
from tests.admin_helpers import admin_client
from tests.integration.chain.conftest import Node, start_node

CHAIN_A, CHAIN_B = 41337, 41338
E18 = 10**18


@pytest.fixture(scope="module")
def node_a() -> Iterator[Node]:
    yield from start_node(CHAIN_A)


@pytest.fixture(scope="module")
def node_b() -> Iterator[Node]:
    yield from start_node(CHAIN_B)


def fund(node: Node, address: str) -> None:
    node.rpc("anvil_setBalance", [address, hex(1_000 * E18)])


@pytest.fixture(scope="module")
def world(
    node_a: Node,
    node_b: Node,
    db_engine: Engine,
    tmp_path_factory: pytest.TempPathFactory,
) -> SimpleNamespace:
    """Stride deployed on both chains (A locks, B mints), two app users with a wallet each."""
    keys = SimpleNamespace(
        **{n: Account.create() for n in ("deployer", "treasury", "royalty", "v1", "v2")}
    )
    directory: Path = tmp_path_factory.mktemp("deployments")
    deployments: dict[int, Deployment] = {}
    for node, mode in ((node_a, "lock"), (node_b, "mint")):
        for account in vars(keys).values():
            fund(node, account.address)
        peer = CHAIN_B if node.chain_id == CHAIN_A else CHAIN_A
        config = DeployConfig(
            treasury=keys.treasury.address,
            royalty_receiver=keys.royalty.address,
            bridge_mode=mode,  # type: ignore[arg-type]
            bridge_validators=[keys.v1.address, keys.v2.address],
            bridge_threshold=2,
            bridge_peers=[peer],
        )
        sender = TxSender.from_key(node.w3, keys.deployer.key.hex())
        deployments[node.chain_id] = deploy(
            sender, config, expected_chain_id=node.chain_id, directory=directory
        )
    settings = get_settings().model_copy(
        update={
            "indexer_chains": f"{CHAIN_A}={node_a.url},{CHAIN_B}={node_b.url}",
            "contract_deployments_dir": directory,
            "actions_confirmations": 1,
        }
    )
    users = {}
    for name in ("alice", "bob", "carol"):
        account = Account.create()
        user_id = f"{name}-{uuid.uuid4().hex[:8]}"
        with session_scope() as session:
            token = create_app_user(session, user_id).token
            if name != "carol":  # carol has no wallet
                link_wallet(
                    session,
                    user_id,
                    account.address,
                    kind="eoa",
                    chain_id=CHAIN_A,
                    now=datetime.now(UTC),
                )
        for node in (node_a, node_b):
            fund(node, account.address)
        users[name] = SimpleNamespace(id=user_id, token=token, account=account)
    a = deployments[CHAIN_A]
    return SimpleNamespace(
        keys=keys,
        settings=settings,
        users=users,
        a=SimpleNamespace(**{k: a.contract(node_a.w3, n) for k, n in CONTRACTS.items()}),
        b=SimpleNamespace(
            **{k: deployments[CHAIN_B].contract(node_b.w3, n) for k, n in CONTRACTS.items()}
        ),
        deployer=TxSender.from_key(node_a.w3, keys.deployer.key.hex()),
    )


CONTRACTS = {
    "token": "StrideToken",
    "items": "StrideItems",
    "vault": "OmnibusVault",
    "market": "StrideMarketplace",
    "bridge": "StrideBridge",
}


@pytest.fixture(scope="module")
def client(world: SimpleNamespace) -> Iterator[TestClient]:
    """The API in process, without its lifespan: these routes need no Kafka producer."""
    app.dependency_overrides[get_settings] = lambda: world.settings
    try:
        yield TestClient(app)
    finally:
        app.dependency_overrides.clear()


# ---- helpers ---------------------------------------------------------------------------


def auth(user: SimpleNamespace) -> dict[str, str]:
    return {"Authorization": f"Bearer {user.token}"}


def prepare(
    client: TestClient, user: SimpleNamespace, kind: str, chain: int = CHAIN_A, **body: Any
) -> Any:
    return client.post(f"/v1/chain/{chain}/actions/{kind}", json=body, headers=auth(user))


def refused(response: Any, code: str, *needles: str) -> str:
    assert response.status_code in (403, 404, 409, 422), response.text
    body = response.json()
    assert body["code"] == code, body
    for needle in needles:
        assert needle in body["detail"], body["detail"]
    return str(body["detail"])


def sign_and_send(w3: Web3, account: LocalAccount, tx: dict[str, Any], **override: Any) -> str:
    """Sign the prepared transaction with the local test key and send it; the mined hash."""
    fields = {
        "type": 2,
        "chainId": int(tx["chainId"], 16),
        "to": tx["to"],
        "data": tx["data"],
        "value": int(tx["value"], 16),
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "gas": int(tx["gas"], 16),
        "maxFeePerGas": int(tx["maxFeePerGas"], 16),
        "maxPriorityFeePerGas": int(tx["maxPriorityFeePerGas"], 16),
    } | override
    signed = account.sign_transaction(fields)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    w3.eth.wait_for_transaction_receipt(tx_hash)
    return "0x" + tx_hash.hex().removeprefix("0x")


def run(
    client: TestClient, w3: Web3, user: SimpleNamespace, kind: str, **body: Any
) -> dict[str, Any]:
    """Prepare, sign and send the approvals and the action, submit it: its final status."""
    response = prepare(client, user, kind, **body)
    assert response.status_code == 201, response.text
    action = response.json()
    for approval in action["approvals"]:
        sign_and_send(w3, user.account, approval["transaction"])
    if action["approvals"]:  # the action's gas was estimated after the approvals
        assert action["transaction"]["gas"]
    tx_hash = sign_and_send(w3, user.account, action["transaction"])
    submitted = client.post(
        f"/v1/actions/{action['id']}/submitted", json={"tx_hash": tx_hash}, headers=auth(user)
    )
    assert submitted.status_code == 200, submitted.text
    return dict(submitted.json())


def mint_item(world: SimpleNamespace, to: str) -> int:
    items = world.a.items
    token_id = int(items.functions.nextTokenId().call())
    world.deployer.call(items.functions.mint(to, "Sword", "ipfs://img", [("rarity", "rare")]))
    return token_id


def mint_tokens(world: SimpleNamespace, to: str, amount: int) -> None:
    world.deployer.call(world.a.token.functions.mint(to, amount))


def advance(node: Node, seconds: int) -> None:
    node.rpc("evm_increaseTime", [seconds])
    node.rpc("evm_mine", [])


# ---- the flows -------------------------------------------------------------------------


def test_stake_an_nft_then_claim_the_rewards(
    client: TestClient, world: SimpleNamespace, node_a: Node
) -> None:
    alice, bob = world.users["alice"], world.users["bob"]
    item = mint_item(world, alice.account.address)
    # Refusals first, each with its decoded reason.
    refused(
        prepare(client, bob, "stake-nft", token_id=str(item)),
        "would_revert",
        "ERC721InsufficientApproval",
    )
    refused(
        prepare(client, alice, "unstake-nft", token_id=str(item)),
        "would_revert",
        "NotDepositOwner",
    )
    done = run(client, node_a.w3, alice, "stake-nft", token_id=str(item))
    assert done["status"] == "confirmed", done
    assert done["approvals"] == [] and done["block_number"] is not None
    vault = world.a.vault
    assert vault.functions.nftDeposits(world.a.items.address, item).call()[0] == (
        alice.account.address
    )
    # Rewards streamed by the operator, then claimed by alice's own wallet.
    mint_tokens(world, world.deployer.address, 1_000 * E18)
    world.deployer.call(world.a.token.functions.approve(vault.address, 1_000 * E18))
    world.deployer.call(vault.functions.notifyRewardAmount(1_000 * E18, 1_000))
    advance(node_a, 100)
    before = world.a.token.functions.balanceOf(alice.account.address).call()
    claimed = run(client, node_a.w3, alice, "claim")
    assert claimed["status"] == "confirmed", claimed
    assert world.a.token.functions.balanceOf(alice.account.address).call() > before
    # bob cannot see alice's action.
    other = client.get(f"/v1/actions/{claimed['id']}", headers=auth(bob))
    refused(other, "action_not_found")
    mine = client.get(f"/v1/actions/{claimed['id']}", headers=auth(alice)).json()
    assert mine["status"] == "confirmed" and mine["tx_hash"] == claimed["tx_hash"]


def test_stake_tokens_needs_an_approval_and_a_balance(
    client: TestClient, world: SimpleNamespace, node_a: Node
) -> None:
    alice = world.users["alice"]
    mint_tokens(world, alice.account.address, 10 * E18)
    response = prepare(client, alice, "stake-tokens", amount=str(10**6 * E18))
    refused(response, "would_revert", "ERC20InsufficientBalance")
    first = prepare(client, alice, "stake-tokens", amount=str(4 * E18)).json()
    assert [a["transaction"]["to"] for a in first["approvals"]] == [world.a.token.address]
    assert "Allow the vault" in first["approvals"][0]["description"]
    done = run(client, node_a.w3, alice, "stake-tokens", amount=str(4 * E18))
    assert done["status"] == "confirmed", done
    assert world.a.vault.functions.tokenStakeOf(alice.account.address).call() == 4 * E18
    refused(
        prepare(client, alice, "unstake-tokens", amount=str(5 * E18)),
        "would_revert",
        "InsufficientStake(requested=5000000000000000000, available=4000000000000000000)",
    )


def test_a_stake_mined_a_while_after_it_was_prepared_still_has_the_gas_it_needs(
    client: TestClient, world: SimpleNamespace, node_a: Node
) -> None:
    """Rewards stream while the wallet signs: prepared in the block of the vault's last
    update (nothing accrued yet, 90k gas), mined a minute later (five slots written, 138k).
    The prepared gas covers both (CI once saw such a stake fail out of gas)."""
    alice = world.users["alice"]
    vault = world.a.vault
    mint_tokens(world, world.deployer.address, 100 * E18)
    world.deployer.call(world.a.token.functions.approve(vault.address, 100 * E18))
    world.deployer.call(vault.functions.notifyRewardAmount(100 * E18, 10_000))
    mint_tokens(world, alice.account.address, 4 * E18)
    staked = run(client, node_a.w3, alice, "stake-tokens", amount=str(2 * E18))
    assert staked["status"] == "confirmed", staked
    # Prepared right after that stake (the vault's last update is in the latest block).
    action = prepare(client, alice, "stake-tokens", amount=str(1 * E18)).json()
    for approval in action["approvals"]:
        sign_and_send(node_a.w3, alice.account, approval["transaction"])
    node_a.rpc("evm_increaseTime", [60])  # the wallet signs a minute later
    tx_hash = sign_and_send(node_a.w3, alice.account, action["transaction"])
    receipt = node_a.w3.eth.get_transaction_receipt(tx_hash)
    assert receipt["status"] == 1, (receipt["gasUsed"], action["transaction"]["gas"])
    submitted = client.post(
        f"/v1/actions/{action['id']}/submitted", json={"tx_hash": tx_hash}, headers=auth(alice)
    )
    assert submitted.json()["status"] == "confirmed", submitted.text


def test_list_then_another_user_buys_with_fees_and_royalties_shown(
    client: TestClient, world: SimpleNamespace, node_a: Node
) -> None:
    alice, bob = world.users["alice"], world.users["bob"]
    item = mint_item(world, alice.account.address)
    price = 100 * E18
    refused(
        prepare(client, bob, "list", token_id=str(item), price=str(price)),
        "would_revert",
        "NotTokenOwner",
    )
    preview = prepare(client, alice, "list", token_id=str(item), price=str(price)).json()
    assert preview["approvals"][0]["transaction"]["to"] == world.a.items.address
    (quote,) = preview["quote"]
    assert quote["fee"] == str(price * 250 // 10_000)  # the market's 2.5 %
    assert quote["royalty"] == str(price * 500 // 10_000)  # the items' 5 %
    assert quote["royalty_receiver"] == world.keys.royalty.address
    assert quote["seller_receives"] == str(price - price * 750 // 10_000)
    listed = run(client, node_a.w3, alice, "list", token_id=str(item), price=str(price))
    assert listed["status"] == "confirmed"
    listing_id = int(world.a.market.functions.listingCount().call())
    # bob has no tokens yet: the approval would pass, the purchase would not.
    refused(
        prepare(client, bob, "buy", listing_id=str(listing_id)),
        "would_revert",
        "ERC20InsufficientBalance",
    )
    mint_tokens(world, bob.account.address, price)
    bought = run(client, node_a.w3, bob, "buy", listing_id=str(listing_id))
    assert bought["status"] == "confirmed", bought
    assert bought["quote"][0]["seller_receives"] == quote["seller_receives"]
    assert world.a.items.functions.ownerOf(item).call() == bob.account.address
    token = world.a.token.functions
    assert token.balanceOf(world.keys.treasury.address).call() >= price * 250 // 10_000
    assert token.balanceOf(world.keys.royalty.address).call() >= price * 500 // 10_000
    refused(prepare(client, bob, "buy", listing_id=str(listing_id)), "would_revert", "NotActive()")


def test_an_expired_listing_is_refused(
    client: TestClient, world: SimpleNamespace, node_a: Node
) -> None:
    alice, bob = world.users["alice"], world.users["bob"]
    item = mint_item(world, alice.account.address)
    listed = run(
        client, node_a.w3, alice, "list", token_id=str(item), price=str(E18), expires_in_s=60
    )
    assert listed["status"] == "confirmed"
    listing_id = int(world.a.market.functions.listingCount().call())
    advance(node_a, 120)
    mint_tokens(world, bob.account.address, E18)
    refused(prepare(client, bob, "buy", listing_id=str(listing_id)), "would_revert", "Expired()")


def test_offer_accepted_and_nft_for_nft_swap(
    client: TestClient, world: SimpleNamespace, node_a: Node
) -> None:
    alice, bob = world.users["alice"], world.users["bob"]
    item = mint_item(world, alice.account.address)
    mint_tokens(world, bob.account.address, 50 * E18)
    offered = run(client, node_a.w3, bob, "make-offer", token_id=str(item), amount=str(50 * E18))
    assert offered["status"] == "confirmed"
    assert offered["quote"][0]["fee"] == str(50 * E18 * 250 // 10_000)
    offer_id = int(world.a.market.functions.offerCount().call())
    refused(
        prepare(client, bob, "accept-offer", offer_id=str(offer_id)),
        "would_revert",
        "NotTokenOwner",
    )
    accepted = run(client, node_a.w3, alice, "accept-offer", offer_id=str(offer_id))
    assert accepted["status"] == "confirmed"
    assert world.a.items.functions.ownerOf(item).call() == bob.account.address
    # NFT for NFT: alice gives a new item for bob's.
    mine = mint_item(world, alice.account.address)
    proposed = run(
        client,
        node_a.w3,
        alice,
        "propose-swap",
        give_token_id=str(mine),
        want_collection=world.a.items.address,
        want_token_id=str(item),
        taker=bob.account.address,
    )
    assert proposed["status"] == "confirmed"
    swap_id = int(world.a.market.functions.swapCount().call())
    swapped = run(client, node_a.w3, bob, "accept-swap", swap_id=str(swap_id))
    assert swapped["status"] == "confirmed", swapped
    assert world.a.items.functions.ownerOf(mine).call() == bob.account.address
    assert world.a.items.functions.ownerOf(item).call() == alice.account.address


def test_bridge_to_the_other_chain_is_followed_until_the_relayer_completes_it(
    client: TestClient, world: SimpleNamespace, node_a: Node, node_b: Node
) -> None:
    alice = world.users["alice"]
    mint_tokens(world, alice.account.address, 20 * E18)
    refused(
        prepare(client, alice, "bridge", amount=str(E18), destination_chain_id=999),
        "would_revert",
        "UnknownChain(chainId=999)",
    )
    sent = run(
        client, node_a.w3, alice, "bridge", amount=str(5 * E18), destination_chain_id=CHAIN_B
    )
    assert sent["status"] == "relaying", sent
    assert sent["destination"]["status"] == "relaying"
    assert sent["destination"]["chain_id"] == CHAIN_B
    relayer_key = Account.create()
    fund(node_b, relayer_key.address)
    relayer = Relayer(
        bridge_contract(node_a.w3, world.a.bridge.address),
        bridge_contract(node_b.w3, world.b.bridge.address),
        [world.keys.v1, world.keys.v2],
        TxSender.from_key(node_b.w3, relayer_key.key.hex()),
    )
    outcomes = relayer.relay_once()
    assert [o.status for o in outcomes] == ["relayed"]
    done = client.get(f"/v1/actions/{sent['id']}", headers=auth(alice)).json()
    assert done["status"] == "confirmed", done
    assert done["destination"]["status"] == "confirmed"
    assert done["destination"]["tx_hash"] == "0x" + outcomes[0].detail.removeprefix("0x")
    assert world.b.token.functions.balanceOf(alice.account.address).call() == 5 * E18


def test_submissions_are_checked_and_a_reverted_transaction_fails_with_its_reason(
    client: TestClient, world: SimpleNamespace, node_a: Node
) -> None:
    alice, bob, carol = (world.users[n] for n in ("alice", "bob", "carol"))
    refused(prepare(client, carol, "claim"), "no_wallet_linked")
    refused(prepare(client, alice, "claim", wallet=bob.account.address), "wallet_not_linked")
    refused(prepare(client, alice, "claim", chain=424242), "not_found", "424242")
    item = mint_item(world, alice.account.address)
    listed = run(client, node_a.w3, alice, "list", token_id=str(item), price=str(E18))
    listing_id = int(world.a.market.functions.listingCount().call())
    assert listed["status"] == "confirmed"
    mint_tokens(world, bob.account.address, E18)
    buy = prepare(client, bob, "buy", listing_id=str(listing_id)).json()
    for approval in buy["approvals"]:
        sign_and_send(node_a.w3, bob.account, approval["transaction"])
    unknown = "0x" + "ab" * 32
    refused(
        client.post(
            f"/v1/actions/{buy['id']}/submitted", json={"tx_hash": unknown}, headers=auth(bob)
        ),
        "tx_not_found",
    )
    other = sign_and_send(node_a.w3, bob.account, buy["transaction"], data="0x")
    refused(
        client.post(
            f"/v1/actions/{buy['id']}/submitted", json={"tx_hash": other}, headers=auth(bob)
        ),
        "tx_mismatch",
        "data",
    )
    # The seller cancels before bob's purchase is mined: it reverts on chain.
    cancelled = run(client, node_a.w3, alice, "cancel-listing", listing_id=str(listing_id))
    assert cancelled["status"] == "confirmed"
    tx_hash = sign_and_send(node_a.w3, bob.account, buy["transaction"])
    failed = client.post(
        f"/v1/actions/{buy['id']}/submitted", json={"tx_hash": tx_hash}, headers=auth(bob)
    ).json()
    assert failed["status"] == "failed", failed
    assert failed["reason"] == "NotActive()"
    again = client.post(
        f"/v1/actions/{buy['id']}/submitted", json={"tx_hash": tx_hash}, headers=auth(bob)
    )
    assert again.status_code == 200 and again.json()["status"] == "failed"
    refused(
        client.post(
            f"/v1/actions/{buy['id']}/submitted", json={"tx_hash": other}, headers=auth(bob)
        ),
        "action_already_submitted",
    )


def test_preparing_again_with_the_same_action_id_is_a_retry(
    client: TestClient, world: SimpleNamespace
) -> None:
    alice = world.users["alice"]
    action_id = str(uuid.uuid4())
    first = prepare(client, alice, "claim", action_id=action_id)
    assert first.status_code == 201, first.text
    again = prepare(client, alice, "claim", action_id=action_id)
    assert again.status_code == 200 and again.json()["id"] == action_id
    refused(
        prepare(client, alice, "stake-tokens", action_id=action_id, amount="1"),
        "action_id_conflict",
    )
    listed = client.get("/v1/actions", headers=auth(alice)).json()["actions"]
    assert action_id in [a["id"] for a in listed]
    assert client.get(f"/v1/actions/{action_id}").status_code == 401


def test_a_listing_in_the_native_coin_is_bought_with_the_price_as_value(
    client: TestClient, world: SimpleNamespace, node_a: Node
) -> None:
    alice, bob = world.users["alice"], world.users["bob"]
    item = mint_item(world, alice.account.address)
    price = E18 // 2
    listed = run(
        client, node_a.w3, alice, "list", token_id=str(item), price=str(price), currency="native"
    )
    assert listed["quote"][0]["currency"] == "native"
    listing_id = int(world.a.market.functions.listingCount().call())
    buy = prepare(client, bob, "buy", listing_id=str(listing_id)).json()
    assert buy["approvals"] == [] and int(buy["transaction"]["value"], 16) == price
    seller_before = node_a.w3.eth.get_balance(alice.account.address)
    bought = run(client, node_a.w3, bob, "buy", listing_id=str(listing_id))
    assert bought["status"] == "confirmed" and bought["indexed"] is False  # no projections here
    assert world.a.items.functions.ownerOf(item).call() == bob.account.address
    received = node_a.w3.eth.get_balance(alice.account.address) - seller_before
    assert received == int(listed["quote"][0]["seller_receives"])


def test_the_admin_panel_shows_actions_with_their_transaction(
    client: TestClient, world: SimpleNamespace, node_a: Node
) -> None:
    alice = world.users["alice"]
    done = run(client, node_a.w3, alice, "claim")
    for viewer in admin_client(create_app(), AdminRole.viewer):
        listed = viewer.get("/admin/actions/list", params={"search": alice.id})
        assert listed.status_code == 200, listed.text
        assert "App actions" in listed.text and "claim" in listed.text
        # The transaction links to its logs (chain_logs filtered on chain and hash).
        assert f"tx_hash={done['tx_hash']}" in html.unescape(listed.text)
        details = viewer.get(f"/admin/actions/details/{done['id']}")
        assert details.status_code == 200 and "confirmed" in details.text
