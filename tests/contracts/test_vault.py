"""OmnibusVault: token and NFT staking, per-second rewards, the two StakingRewards fixes
(idle-time rewards and rounding dust are re-streamed, not stuck), exits, pause, reentrancy,
and hypothesis properties (never pays more than funded, bounded dust)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3
from web3.logs import DISCARD

from tests.contracts.conftest import (
    E18,
    MintItem,
    deploy_artifact,
    mine_at,
    now,
    reverts,
    send,
    set_next_timestamp,
)

DAY = 86_400


def _fund_rewards(c: SimpleNamespace, accounts: SimpleNamespace, amount: int) -> None:
    send(c.token.functions.mint(accounts.deployer.address, amount), accounts.minter)
    send(c.token.functions.approve(c.vault.address, 2**256 - 1), accounts.deployer)


def _stake(c: SimpleNamespace, accounts: SimpleNamespace, who, amount: int) -> None:
    send(c.token.functions.mint(who.address, amount), accounts.minter)
    send(c.token.functions.approve(c.vault.address, amount), who)
    send(c.vault.functions.stake(amount), who)


def _notify(c: SimpleNamespace, accounts: SimpleNamespace, amount: int, duration: int):
    return send(c.vault.functions.notifyRewardAmount(amount, duration), accounts.deployer)


def test_single_staker_earns_the_stream(
    c: SimpleNamespace, accounts: SimpleNamespace, w3: Web3
) -> None:
    alice = accounts.alice
    _fund_rewards(c, accounts, 100 * E18)
    _stake(c, accounts, alice, 10 * E18)
    start = now(w3) + 10
    set_next_timestamp(w3, start)
    _notify(c, accounts, 100 * E18, 100)
    mine_at(w3, start + 50)
    assert abs(c.vault.functions.earned(alice.address).call() - 50 * E18) <= 10
    mine_at(w3, start + 1_000)
    receipt = send(c.vault.functions.claim(), alice)
    paid = c.vault.events.RewardPaid().process_receipt(receipt, errors=DISCARD)[0]["args"]["reward"]
    assert 100 * E18 - 10 <= paid <= 100 * E18
    assert c.token.functions.balanceOf(alice.address).call() == paid


def test_rewards_split_by_stake_and_time(
    c: SimpleNamespace, accounts: SimpleNamespace, w3: Web3
) -> None:
    alice, bob = accounts.alice, accounts.bob
    _fund_rewards(c, accounts, 300 * E18)
    _stake(c, accounts, alice, 10 * E18)
    start = now(w3) + 10
    set_next_timestamp(w3, start)
    _notify(c, accounts, 300 * E18, 300)
    send(c.token.functions.mint(bob.address, 20 * E18), accounts.minter)
    send(c.token.functions.approve(c.vault.address, 20 * E18), bob)
    set_next_timestamp(w3, start + 150)
    send(c.vault.functions.stake(20 * E18), bob)
    mine_at(w3, start + 300)
    # alice: 150 alone + 1/3 of 150; bob: 2/3 of 150.
    assert abs(c.vault.functions.earned(alice.address).call() - 200 * E18) <= 10
    assert abs(c.vault.functions.earned(bob.address).call() - 100 * E18) <= 10


def test_idle_time_rewards_are_restreamed(
    c: SimpleNamespace, accounts: SimpleNamespace, w3: Web3
) -> None:
    """Original StakingRewards loses what is emitted while nobody stakes; here it is kept."""
    alice = accounts.alice
    _fund_rewards(c, accounts, 100 * E18)
    start = now(w3) + 10
    set_next_timestamp(w3, start)
    _notify(c, accounts, 100 * E18, 100)
    send(c.token.functions.mint(alice.address, E18), accounts.minter)
    send(c.token.functions.approve(c.vault.address, E18), alice)
    set_next_timestamp(w3, start + 50)
    send(c.vault.functions.stake(E18), alice)
    mine_at(w3, start + 100)
    assert abs(c.vault.functions.earned(alice.address).call() - 50 * E18) <= 10
    assert abs(c.vault.functions.unallocatedRewards().call() - 50 * E18) <= 10
    receipt = _notify(c, accounts, 0, 50)
    streamed = c.vault.events.RewardAdded().process_receipt(receipt, errors=DISCARD)[0]["args"][
        "streamed"
    ]
    assert abs(streamed - 50 * E18) <= 10
    mine_at(w3, now(w3) + 100)
    send(c.vault.functions.claim(), alice)
    assert 100 * E18 - 20 <= c.token.functions.balanceOf(alice.address).call() <= 100 * E18


def test_rounding_dust_is_not_stuck(
    c: SimpleNamespace, accounts: SimpleNamespace, w3: Web3
) -> None:
    """An amount that does not divide the duration still pays out almost entirely, and what
    rounding keeps back is unallocated (re-streamable), not stuck."""
    alice = accounts.alice
    reward = 10**18 + 7
    _fund_rewards(c, accounts, reward)
    _stake(c, accounts, alice, 3)  # tiny stake: maximal rounding in rewardPerToken
    _notify(c, accounts, reward, 7 * DAY + 13)
    mine_at(w3, now(w3) + 8 * DAY)
    send(c.vault.functions.claim(), alice)
    paid = c.token.functions.balanceOf(alice.address).call()
    assert paid <= reward
    left = c.vault.functions.unallocatedRewards().call()
    assert paid + left == reward
    assert left <= 3


def test_nft_staking_and_withdraw(
    c: SimpleNamespace, accounts: SimpleNamespace, mint_item: MintItem, w3: Web3
) -> None:
    alice = accounts.alice
    token_id = mint_item(alice.address)
    receipt = send(
        c.items.functions.safeTransferFrom(alice.address, c.vault.address, token_id), alice
    )
    staked = c.vault.events.NftStaked().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (staked["account"], staked["tokenId"], staked["weight"]) == (
        alice.address,
        token_id,
        100 * E18,
    )
    assert c.vault.functions.stakeOf(alice.address).call() == 100 * E18
    _fund_rewards(c, accounts, 10 * E18)
    _notify(c, accounts, 10 * E18, 10)
    mine_at(w3, now(w3) + 20)
    with reverts("NotDepositOwner"):
        send(c.vault.functions.withdrawNft(c.items.address, token_id), accounts.bob)
    send(c.vault.functions.withdrawNft(c.items.address, token_id), alice)
    assert c.items.functions.ownerOf(token_id).call() == alice.address
    assert c.vault.functions.stakeOf(alice.address).call() == 0
    send(c.vault.functions.claim(), alice)
    assert 10 * E18 - 100 <= c.token.functions.balanceOf(alice.address).call() <= 10 * E18


def test_nft_from_unlisted_collection_rejected(
    c: SimpleNamespace, accounts: SimpleNamespace, w3: Web3
) -> None:
    alice = accounts.alice
    other = deploy_artifact(w3, "PlainERC721", alice.address)
    send(other.functions.mint(alice.address, 1), alice)
    with reverts("CollectionNotAllowed"):
        send(other.functions.safeTransferFrom(alice.address, c.vault.address, 1), alice)
    with reverts("CollectionNotAllowed"):  # calling the hook directly proves nothing either
        send(c.vault.functions.onERC721Received(alice.address, alice.address, 1, b""), alice)
    with reverts("AccessControlUnauthorizedAccount"):
        send(c.vault.functions.setCollectionWeight(other.address, 1), alice)


def test_rescue_only_unstaked_nfts(
    c: SimpleNamespace, accounts: SimpleNamespace, mint_item: MintItem
) -> None:
    alice, admin = accounts.alice, accounts.deployer
    staked = mint_item(alice.address)
    send(c.items.functions.safeTransferFrom(alice.address, c.vault.address, staked), alice)
    stray = mint_item(alice.address)  # plain transferFrom: no deposit is recorded
    send(c.items.functions.transferFrom(alice.address, c.vault.address, stray), alice)
    assert c.vault.functions.stakeOf(alice.address).call() == 100 * E18
    with reverts("AccessControlUnauthorizedAccount"):
        send(c.vault.functions.rescueNft(c.items.address, stray, alice.address), alice)
    with reverts("NftIsStaked"):
        send(c.vault.functions.rescueNft(c.items.address, staked, admin.address), admin)
    send(c.vault.functions.rescueNft(c.items.address, stray, alice.address), admin)
    assert c.items.functions.ownerOf(stray).call() == alice.address


def test_exit_returns_everything(
    c: SimpleNamespace, accounts: SimpleNamespace, mint_item: MintItem, w3: Web3
) -> None:
    alice = accounts.alice
    token_id = mint_item(alice.address)
    send(c.items.functions.safeTransferFrom(alice.address, c.vault.address, token_id), alice)
    _stake(c, accounts, alice, 5 * E18)
    _fund_rewards(c, accounts, 10 * E18)
    _notify(c, accounts, 10 * E18, 10)
    mine_at(w3, now(w3) + 20)
    send(c.vault.functions.exit([c.items.address], [token_id]), alice)
    assert c.items.functions.ownerOf(token_id).call() == alice.address
    balance = c.token.functions.balanceOf(alice.address).call()
    assert 15 * E18 - 100 <= balance <= 15 * E18
    assert c.vault.functions.totalStaked().call() == 0


def test_revert_paths(c: SimpleNamespace, accounts: SimpleNamespace) -> None:
    alice = accounts.alice
    with reverts("ZeroAmount"):
        send(c.vault.functions.stake(0), alice)
    _stake(c, accounts, alice, E18)
    with reverts("InsufficientStake"):
        send(c.vault.functions.withdraw(2 * E18), alice)
    with reverts("ZeroAmount"):
        send(c.vault.functions.withdraw(0), alice)
    with reverts("AccessControlUnauthorizedAccount"):
        send(c.vault.functions.notifyRewardAmount(1, 1), alice)
    with reverts("ZeroDuration"):
        _notify(c, accounts, 0, 0)
    with reverts("RewardTooLow"):
        _notify(c, accounts, 0, 100)
    with reverts("ERC20InsufficientAllowance"):
        _notify(c, accounts, E18, 100)
    with reverts("AccessControlUnauthorizedAccount"):
        send(c.vault.functions.pause(), alice)


def test_pause_blocks_entry_but_never_exit(
    c: SimpleNamespace, accounts: SimpleNamespace, mint_item: MintItem, w3: Web3
) -> None:
    alice = accounts.alice
    token_id = mint_item(alice.address)
    send(c.items.functions.safeTransferFrom(alice.address, c.vault.address, token_id), alice)
    _stake(c, accounts, alice, 4 * E18)
    _fund_rewards(c, accounts, 10 * E18)
    _notify(c, accounts, 10 * E18, 10)
    mine_at(w3, now(w3) + 20)
    send(c.vault.functions.pause(), accounts.deployer)
    send(c.token.functions.mint(alice.address, E18), accounts.minter)
    send(c.token.functions.approve(c.vault.address, E18), alice)
    with reverts("EnforcedPause"):
        send(c.vault.functions.stake(E18), alice)
    with reverts("EnforcedPause"):
        send(c.vault.functions.claim(), alice)
    send(c.vault.functions.withdraw(E18), alice)
    receipt = send(c.vault.functions.emergencyWithdraw([c.items.address], [token_id]), alice)
    event = c.vault.events.EmergencyWithdrawn().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert event["amount"] == 3 * E18
    assert event["forfeited"] > 9 * E18
    assert c.items.functions.ownerOf(token_id).call() == alice.address
    # Forfeited rewards (and rounding dust) are not lost: all of it can be streamed again.
    assert c.vault.functions.unallocatedRewards().call() == 10 * E18
    assert c.vault.functions.stakeOf(alice.address).call() == 0


@pytest.mark.parametrize("payload", ["withdrawNft", "claim"])
def test_reentrancy_through_malicious_receiver(
    c: SimpleNamespace, accounts: SimpleNamespace, w3: Web3, payload: str
) -> None:
    """A contract staker re-enters the vault from onERC721Received while withdrawing."""
    attacker = deploy_artifact(w3, "ReentrantReceiver", accounts.bob.address)
    send(c.items.functions.mint(attacker.address, "Axe", "ipfs://a", []), accounts.minter)
    token_id = c.items.functions.nextTokenId().call() - 1
    stake_call = c.items.functions.safeTransferFrom(attacker.address, c.vault.address, token_id)
    send(
        attacker.functions.execute(c.items.address, stake_call._encode_transaction_data(), 0),
        accounts.bob,
    )
    _fund_rewards(c, accounts, 10 * E18)
    _notify(c, accounts, 10 * E18, 10)
    mine_at(w3, now(w3) + 20)
    reenter = (
        c.vault.functions.withdrawNft(c.items.address, token_id)
        if payload == "withdrawNft"
        else c.vault.functions.claim()
    )
    withdraw = c.vault.functions.withdrawNft(c.items.address, token_id)._encode_transaction_data()

    send(
        attacker.functions.arm(c.vault.address, reenter._encode_transaction_data(), False),
        accounts.bob,
    )
    with reverts("ReentrancyGuardReentrantCall"):
        send(attacker.functions.execute(c.vault.address, withdraw, 0), accounts.bob)
    assert c.items.functions.ownerOf(token_id).call() == c.vault.address

    send(
        attacker.functions.arm(c.vault.address, reenter._encode_transaction_data(), True),
        accounts.bob,
    )
    send(attacker.functions.execute(c.vault.address, withdraw, 0), accounts.bob)
    assert attacker.functions.reentryAttempts().call() == 1
    assert not attacker.functions.reentrySucceeded().call()
    assert c.items.functions.ownerOf(token_id).call() == attacker.address
    assert c.token.functions.balanceOf(attacker.address).call() == 0  # nothing claimed


# ---- properties -------------------------------------------------------------------------

ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("stake"), st.integers(0, 2), st.integers(1, 10**24)),
        st.tuples(st.just("withdraw"), st.integers(0, 2), st.integers(1, 100)),
        st.tuples(st.just("claim"), st.integers(0, 2), st.just(0)),
        st.tuples(st.just("wait"), st.just(0), st.integers(1, 3 * DAY)),
        st.tuples(st.just("notify"), st.integers(1, 10 * DAY), st.integers(1, 10**24)),
    ),
    min_size=1,
    max_size=12,
)


@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=ACTIONS, keep_one_staker=st.booleans())
def test_staking_never_overpays_and_leaves_bounded_dust(
    c: SimpleNamespace,
    accounts: SimpleNamespace,
    w3: Web3,
    actions: list[tuple[str, int, int]],
    keep_one_staker: bool,
) -> None:
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        _check_staking_properties(c, accounts, w3, actions, keep_one_staker)
    finally:
        w3.provider.make_request("evm_revert", [snapshot])


def _check_staking_properties(
    c: SimpleNamespace,
    accounts: SimpleNamespace,
    w3: Web3,
    actions: list[tuple[str, int, int]],
    keep_one_staker: bool,
) -> None:
    users = [accounts.alice, accounts.bob, accounts.carol]
    vault, token = c.vault, c.token
    _fund_rewards(c, accounts, 0)
    for user in users:
        send(token.functions.approve(vault.address, 2**256 - 1), user)
    funded = 0
    principal_in = 0
    updates = 0
    max_staked = 0
    if keep_one_staker:  # carol stays staked throughout: no idle time, only rounding dust
        send(token.functions.mint(accounts.carol.address, 10**18), accounts.minter)
        send(vault.functions.stake(10**18), accounts.carol)
        principal_in += 10**18
    for kind, a, b in actions:
        if kind == "stake":
            send(token.functions.mint(users[a].address, b), accounts.minter)
            send(vault.functions.stake(b), users[a])
            principal_in += b
        elif kind == "withdraw":
            staked = vault.functions.tokenStakeOf(users[a].address).call()
            if keep_one_staker and a == 2:
                staked -= 10**18
            amount = staked * b // 100
            if amount == 0:
                continue
            send(vault.functions.withdraw(amount), users[a])
        elif kind == "claim":
            send(vault.functions.claim(), users[a])
        elif kind == "wait":
            mine_at(w3, now(w3) + b)
        else:
            send(token.functions.mint(accounts.deployer.address, b), accounts.minter)
            _notify(c, accounts, b, a)
            funded += b
        updates += 1
        max_staked = max(max_staked, vault.functions.totalStaked().call())
        # Solvency: principal plus everything owed is always covered.
        reserve = token.functions.balanceOf(vault.address).call()
        owed = vault.functions.owedRewards().call()
        assert reserve >= vault.functions.totalTokenPrincipal().call() + owed

    if funded and vault.functions.periodFinish().call() > now(w3):
        mine_at(w3, vault.functions.periodFinish().call() + 1)
    for user in users:
        send(vault.functions.exit([], []), user)
    paid = sum(token.functions.balanceOf(u.address).call() for u in users) - principal_in
    assert paid <= funded, "paid out more than was funded"
    left = vault.functions.unallocatedRewards().call()
    assert token.functions.balanceOf(vault.address).call() == left
    assert paid + left == funded, "reward tokens neither paid nor recoverable"
    if keep_one_staker:
        # Rounding only: < 1 rewardPerToken unit per update, < 1 wei per user per update.
        dust_bound = (updates + 2) * (max_staked // 10**18 + 1 + len(users)) + 1
        assert left <= dust_bound
