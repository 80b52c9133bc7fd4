"""StrideBridge and the relayer across two anvil chains (ids 31337 lock/release and 31338
mint/burn): M-of-N EIP-712 signatures, replay protection, rate limit, pause, round trip."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD

from contracts.deploy import Deployment
from contracts.node import TxSender
from contracts.relayer import BridgeTransfer, Relayer, collect_signatures, sign_transfer
from tests.contracts.conftest import (
    CHAIN_A,
    CHAIN_B,
    E18,
    Node,
    contracts_of,
    now,
    reverts,
    send,
    validators_of,
)


@pytest.fixture(scope="session")
def cb(node_b: Node, deployment_b: Deployment) -> SimpleNamespace:
    """The contracts on chain B (bridged token, mint/burn bridge)."""
    return contracts_of(node_b.w3, deployment_b)


def _transfer(recipient: str, amount: int, nonce: int = 1, src: int = CHAIN_A) -> BridgeTransfer:
    dst = CHAIN_B if src == CHAIN_A else CHAIN_A
    return BridgeTransfer(src, dst, nonce, recipient, recipient, amount, 0)


def _sigs(validators: list[LocalAccount], transfer: BridgeTransfer, bridge) -> list[bytes]:
    return collect_signatures(validators, transfer, bridge.address)


def test_lock_emits_event_and_holds_tokens(c: SimpleNamespace, accounts: SimpleNamespace) -> None:
    alice = accounts.alice
    send(c.token.functions.mint(alice.address, 10 * E18), accounts.minter)
    with reverts("ERC20InsufficientAllowance"):
        send(c.bridge.functions.bridgeOut(CHAIN_B, alice.address, 4 * E18), alice)
    send(c.token.functions.approve(c.bridge.address, 4 * E18), alice)
    with reverts("UnknownChain"):
        send(c.bridge.functions.bridgeOut(999, alice.address, 4 * E18), alice)
    with reverts("ZeroAmount"):
        send(c.bridge.functions.bridgeOut(CHAIN_B, alice.address, 0), alice)
    receipt = send(c.bridge.functions.bridgeOut(CHAIN_B, alice.address, 4 * E18), alice)
    event = c.bridge.events.BridgeOut().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (event["nonce"], event["dstChainId"], event["amount"]) == (1, CHAIN_B, 4 * E18)
    assert c.token.functions.balanceOf(c.bridge.address).call() == 4 * E18


def test_mint_with_threshold_signatures_and_replay_rejected(
    cb: SimpleNamespace, accounts: SimpleNamespace
) -> None:
    alice = accounts.alice
    transfer = _transfer(alice.address, 3 * E18)
    two_of_three = _sigs(validators_of(accounts)[:2], transfer, cb.bridge)
    digest = cb.bridge.functions.transferDigest(transfer.as_struct()).call()
    assert len(digest) == 32
    send(cb.bridge.functions.bridgeIn(transfer.as_struct(), two_of_three), accounts.bob)
    assert cb.token.functions.balanceOf(alice.address).call() == 3 * E18
    assert cb.bridge.functions.processed(CHAIN_A, 1).call()
    with reverts("AlreadyProcessed"):
        send(cb.bridge.functions.bridgeIn(transfer.as_struct(), two_of_three), accounts.bob)


def test_signature_rejections(
    cb: SimpleNamespace, c: SimpleNamespace, accounts: SimpleNamespace
) -> None:
    v1, v2, v3 = validators_of(accounts)
    transfer = _transfer(accounts.alice.address, E18)
    struct = transfer.as_struct()
    bridge_in = cb.bridge.functions.bridgeIn
    with reverts("NotEnoughSignatures"):  # under threshold
        send(bridge_in(struct, _sigs([v1], transfer, cb.bridge)), accounts.bob)
    with reverts("NotValidator"):  # a non-validator fills the quorum
        send(bridge_in(struct, _sigs([v1, accounts.v4], transfer, cb.bridge)), accounts.bob)
    one = sign_transfer(v1, transfer, cb.bridge.address)[1]
    with reverts("SignersNotSorted"):  # the same validator twice
        send(bridge_in(struct, [one, one]), accounts.bob)
    with reverts("SignersNotSorted"):  # wrong order
        send(bridge_in(struct, list(reversed(_sigs([v1, v2], transfer, cb.bridge)))), accounts.bob)
    # Signatures made for another chain's domain (same bridge address, other chain id) do not
    # verify: a transfer signed for one destination cannot be replayed on another.
    assert c.bridge.address == cb.bridge.address
    elsewhere = dataclasses.replace(transfer, dst_chain_id=CHAIN_A)
    with reverts("NotValidator"):
        send(bridge_in(struct, _sigs([v1, v2], elsewhere, cb.bridge)), accounts.bob)
    # Signatures over different terms (amount changed by the relayer) do not verify.
    inflated = _transfer(accounts.alice.address, 1_000 * E18)
    with reverts("NotValidator"):
        send(bridge_in(inflated.as_struct(), _sigs([v1, v3], transfer, cb.bridge)), accounts.bob)
    unknown = BridgeTransfer(999, CHAIN_B, 1, accounts.alice.address, accounts.alice.address, 1, 0)
    with reverts("UnknownChain"):
        send(bridge_in(unknown.as_struct(), _sigs([v1, v2], unknown, cb.bridge)), accounts.bob)


def test_rate_limit_per_period(
    cb: SimpleNamespace, accounts: SimpleNamespace, node_b: Node
) -> None:
    validators = validators_of(accounts)[:2]
    big = _transfer(accounts.alice.address, 800 * E18, nonce=1)
    send(
        cb.bridge.functions.bridgeIn(big.as_struct(), _sigs(validators, big, cb.bridge)),
        accounts.bob,
    )
    assert cb.bridge.functions.availableInPeriod().call() == 200 * E18
    second = _transfer(accounts.alice.address, 300 * E18, nonce=2)
    sigs = _sigs(validators, second, cb.bridge)
    with reverts("RateLimitExceeded"):
        send(cb.bridge.functions.bridgeIn(second.as_struct(), sigs), accounts.bob)
    node_b.w3.provider.make_request("evm_mine", [now(node_b.w3) + 86_400])
    send(cb.bridge.functions.bridgeIn(second.as_struct(), sigs), accounts.bob)
    assert cb.token.functions.balanceOf(accounts.alice.address).call() == 1_100 * E18


def test_pause_and_admin(cb: SimpleNamespace, accounts: SimpleNamespace) -> None:
    admin, alice = accounts.deployer, accounts.alice
    transfer = _transfer(alice.address, E18)
    sigs = _sigs(validators_of(accounts)[:2], transfer, cb.bridge)
    with reverts("AccessControlUnauthorizedAccount"):
        send(cb.bridge.functions.pause(), alice)
    send(cb.bridge.functions.pause(), admin)
    with reverts("EnforcedPause"):
        send(cb.bridge.functions.bridgeIn(transfer.as_struct(), sigs), accounts.bob)
    with reverts("EnforcedPause"):
        send(cb.bridge.functions.bridgeOut(CHAIN_A, alice.address, 1), alice)
    send(cb.bridge.functions.unpause(), admin)
    send(cb.bridge.functions.bridgeIn(transfer.as_struct(), sigs), accounts.bob)
    with reverts("AccessControlUnauthorizedAccount"):
        send(cb.bridge.functions.setValidators([alice.address], 1), alice)
    with reverts("InvalidValidatorSet"):
        send(cb.bridge.functions.setValidators([alice.address], 2), admin)
    with reverts("InvalidValidatorSet"):
        send(cb.bridge.functions.setValidators([alice.address, alice.address], 1), admin)
    with reverts("UnknownChain"):
        send(cb.bridge.functions.setPeerChain(CHAIN_B, True), admin)
    with reverts("AccessControlUnauthorizedAccount"):
        send(cb.bridge.functions.setRateLimit(1, 1), alice)
    # Rotating validators invalidates the old set's signatures.
    v4 = accounts.v4
    send(cb.bridge.functions.setValidators([v4.address], 1), admin)
    nxt = _transfer(alice.address, E18, nonce=2)
    with reverts("NotValidator"):
        send(
            cb.bridge.functions.bridgeIn(
                nxt.as_struct(), _sigs(validators_of(accounts)[:2], nxt, cb.bridge)
            ),
            accounts.bob,
        )
    send(cb.bridge.functions.bridgeIn(nxt.as_struct(), _sigs([v4], nxt, cb.bridge)), accounts.bob)


def test_burn_needs_holder_allowance(cb: SimpleNamespace, accounts: SimpleNamespace) -> None:
    alice = accounts.alice
    transfer = _transfer(alice.address, 5 * E18)
    send(
        cb.bridge.functions.bridgeIn(
            transfer.as_struct(), _sigs(validators_of(accounts)[:2], transfer, cb.bridge)
        ),
        accounts.bob,
    )
    with reverts("ERC20InsufficientAllowance"):
        send(cb.bridge.functions.bridgeOut(CHAIN_A, alice.address, E18), alice)
    send(cb.token.functions.approve(cb.bridge.address, E18), alice)
    send(cb.bridge.functions.bridgeOut(CHAIN_A, alice.address, E18), alice)
    assert cb.token.functions.totalSupply().call() == 4 * E18


def _relayers(
    node_a: Node, node_b: Node, c, cb, accounts, deployment_a, deployment_b
) -> tuple[Relayer, Relayer]:
    validators = validators_of(accounts)[:2]
    a_to_b = Relayer(
        c.bridge,
        cb.bridge,
        validators,
        TxSender.from_key(node_b.w3, accounts.carol.key.hex()),
        start_block=deployment_a.contracts["StrideBridge"]["block"],
    )
    b_to_a = Relayer(
        cb.bridge,
        c.bridge,
        validators,
        TxSender.from_key(node_a.w3, accounts.carol.key.hex()),
        start_block=deployment_b.contracts["StrideBridge"]["block"],
    )
    return a_to_b, b_to_a


def test_round_trip_across_two_chains(
    node_a: Node,
    node_b: Node,
    c: SimpleNamespace,
    cb: SimpleNamespace,
    accounts: SimpleNamespace,
    deployment_a: Deployment,
    deployment_b: Deployment,
) -> None:
    alice, bob = accounts.alice, accounts.bob
    assert node_a.w3.eth.chain_id != node_b.w3.eth.chain_id
    a_to_b, b_to_a = _relayers(node_a, node_b, c, cb, accounts, deployment_a, deployment_b)
    send(c.token.functions.mint(alice.address, 10 * E18), accounts.minter)
    send(c.token.functions.approve(c.bridge.address, 10 * E18), alice)
    send(c.bridge.functions.bridgeOut(CHAIN_B, bob.address, 6 * E18), alice)
    send(c.bridge.functions.bridgeOut(CHAIN_B, alice.address, 1 * E18), alice)

    outcomes = a_to_b.relay_once()
    assert [o.status for o in outcomes] == ["relayed", "relayed"]
    assert cb.token.functions.balanceOf(bob.address).call() == 6 * E18
    assert cb.token.functions.balanceOf(alice.address).call() == E18
    assert c.token.functions.balanceOf(c.bridge.address).call() == 7 * E18
    assert a_to_b.relay_once() == []  # nothing new
    a_to_b.next_block = 0  # a full rescan is harmless: everything is already processed
    assert {o.status for o in a_to_b.relay_once()} == {"already-processed"}

    send(cb.token.functions.approve(cb.bridge.address, 6 * E18), bob)
    send(cb.bridge.functions.bridgeOut(CHAIN_A, bob.address, 6 * E18), bob)
    assert [o.status for o in b_to_a.relay_once()] == ["relayed"]
    assert c.token.functions.balanceOf(bob.address).call() == 6 * E18
    assert c.token.functions.balanceOf(c.bridge.address).call() == E18
    assert cb.token.functions.totalSupply().call() == E18  # supply on B == locked on A


def test_relayer_defers_over_rate_limit_and_retries(
    node_a: Node,
    node_b: Node,
    c: SimpleNamespace,
    cb: SimpleNamespace,
    accounts: SimpleNamespace,
    deployment_a: Deployment,
    deployment_b: Deployment,
) -> None:
    alice = accounts.alice
    a_to_b, _ = _relayers(node_a, node_b, c, cb, accounts, deployment_a, deployment_b)
    send(c.token.functions.mint(alice.address, 1_500 * E18), accounts.minter)
    send(c.token.functions.approve(c.bridge.address, 1_500 * E18), alice)
    send(c.bridge.functions.bridgeOut(CHAIN_B, alice.address, 900 * E18), alice)
    send(c.bridge.functions.bridgeOut(CHAIN_B, alice.address, 600 * E18), alice)
    outcomes = a_to_b.relay_once()
    assert [(o.status, o.detail) for o in outcomes][1] == ("deferred", "RateLimitExceeded")
    assert a_to_b.relay_once()[-1].status == "deferred"
    node_b.w3.provider.make_request("evm_mine", [now(node_b.w3) + 86_400])
    assert [o.status for o in a_to_b.relay_once()] == ["relayed"]
    assert cb.token.functions.balanceOf(alice.address).call() == 1_500 * E18
