"""The chain writer's pure rules: life cycle, resolution, batching, fees, nonce repair."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from core.rewards.batching import (
    CONTRACT_MAX_BATCH,
    batch_size_for,
    batches,
    command_key,
    command_of_key,
    mint_gas_limit,
    to_wei,
)
from core.rewards.commands import RewardAction, RewardStatus
from core.rewards.fees import GWEI, FeePolicy, Fees, bumped, initial_fees, should_bump
from core.rewards.nonces import reconcile
from core.rewards.states import IllegalTransition, check, resolution

S = RewardStatus
POLICY = FeePolicy(max_fee_cap=100 * GWEI, min_priority_fee=GWEI, bump_after_blocks=3)


# ---- life cycle ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.pending, S.awaiting_wallet),
        (S.pending, S.needs_authorization),
        (S.pending, S.queued),
        (S.awaiting_wallet, S.pending),
        (S.needs_authorization, S.queued),
        (S.queued, S.submitted),
        (S.submitted, S.confirmed),
        (S.submitted, S.failed),
        (S.submitted, S.queued),
        (S.failed, S.pending),
    ],
)
def test_allowed_transitions(old: RewardStatus, new: RewardStatus) -> None:
    assert check(old, new) is new


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.confirmed, S.pending),
        (S.confirmed, S.submitted),
        (S.pending, S.confirmed),
        (S.awaiting_wallet, S.submitted),
        (S.needs_authorization, S.confirmed),
        (S.failed, S.confirmed),
    ],
)
def test_forbidden_transitions(old: RewardStatus, new: RewardStatus) -> None:
    with pytest.raises(IllegalTransition, match=f"a {old} reward command cannot become {new}"):
        check(old, new)


def test_mint_waits_for_a_wallet_with_a_reason() -> None:
    cid = uuid.uuid4()
    status, recipient, reason = resolution(cid, RewardAction.mint, "tri", "p1", None, None)
    assert (status, recipient) == (S.awaiting_wallet, None)
    assert reason and "'p1'" in reason and "'tri'" in reason and "primary wallet" in reason
    wallet = "0x" + "ab" * 20
    assert resolution(cid, RewardAction.mint, "tri", "p1", wallet, None) == (S.queued, wallet, None)


def test_burn_needs_the_holders_permit() -> None:
    cid = uuid.uuid4()
    wallet = "0x" + "ab" * 20
    status, recipient, reason = resolution(cid, RewardAction.burn, "tri", "p1", wallet, None)
    assert (status, recipient) == (S.needs_authorization, None)
    assert reason and f"/v1/purchases/{cid}/intent" in reason
    holder = "0x" + "cd" * 20
    assert resolution(cid, RewardAction.burn, "tri", "p1", wallet, holder) == (
        S.queued,
        holder,
        None,
    )


# ---- batching --------------------------------------------------------------------------


def test_to_wei_is_exact() -> None:
    assert to_wei(Decimal("10")) == 10 * 10**18
    assert to_wei(Decimal("0.000000000000000001")) == 1
    for bad in (Decimal("0"), Decimal("-1"), Decimal("0.0000000000000000001")):
        with pytest.raises(ValueError, match="positive amount"):
            to_wei(bad)


def test_command_keys_round_trip() -> None:
    cid = uuid.uuid4()
    key = command_key(cid)
    assert len(key) == 32 and key[:16] == b"\0" * 16
    assert command_of_key(key) == cid


def test_batches_keep_order_and_bounds() -> None:
    items = list(range(10))
    assert batches(items, 4, 10) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches(items, 4, 2) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert batches([], 4, 2) == []
    with pytest.raises(ValueError):
        batches(items, 0, 1)


def test_batch_size_fits_the_contract_and_the_block() -> None:
    assert batch_size_for(10_000, 10**12) == CONTRACT_MAX_BATCH
    size = batch_size_for(512, 30_000_000)
    assert mint_gas_limit(size) <= 15_000_000 < mint_gas_limit(size + 1)
    assert batch_size_for(5, 30_000_000) == 5
    assert batch_size_for(5, 1) == 1


# ---- fees ------------------------------------------------------------------------------


def test_initial_fees_cover_base_fee_rises_under_the_cap() -> None:
    assert initial_fees(10 * GWEI, 0, POLICY) == Fees(21 * GWEI, GWEI)
    assert initial_fees(10 * GWEI, 3 * GWEI, POLICY) == Fees(23 * GWEI, 3 * GWEI)
    assert initial_fees(80 * GWEI, GWEI, POLICY) == Fees(100 * GWEI, GWEI)


def test_bump_waits_the_configured_blocks() -> None:
    assert not should_bump(None, 100, POLICY)
    assert not should_bump(98, 100, POLICY)
    assert should_bump(97, 100, POLICY)


def test_bump_raises_both_fees_by_the_percent_and_covers_the_base_fee() -> None:
    new = bumped(Fees(20 * GWEI, 2 * GWEI), 5 * GWEI, POLICY)
    assert new == Fees(25 * GWEI, 25 * GWEI // 10)
    # The base fee rose: the new max fee covers twice it plus the tip.
    new = bumped(Fees(20 * GWEI, 2 * GWEI), 30 * GWEI, POLICY)
    assert new is not None and new.max_fee_per_gas == 60 * GWEI + new.max_priority_fee_per_gas


def test_bump_stops_at_the_cap() -> None:
    near = bumped(Fees(88 * GWEI, GWEI), GWEI, POLICY)
    assert near == Fees(100 * GWEI, 125 * GWEI // 100)  # capped, still >= 10% more
    assert bumped(Fees(95 * GWEI, GWEI), GWEI, POLICY) is None  # < 10% room left
    assert bumped(Fees(100 * GWEI, GWEI), GWEI, POLICY) is None


def test_policy_refuses_bumps_nodes_would_reject() -> None:
    with pytest.raises(ValueError, match="10%"):
        FeePolicy(max_fee_cap=GWEI, min_priority_fee=0, bump_after_blocks=1, bump_percent=5)


# ---- nonces ----------------------------------------------------------------------------


def test_first_start_takes_the_chains_pending_nonce() -> None:
    repair = reconcile(None, 5, 7, [])
    assert repair.next_nonce == 7 and not repair.rebroadcast and not repair.drop


def test_in_step_needs_nothing() -> None:
    repair = reconcile(10, 8, 10, [8, 9])
    assert (repair.next_nonce, repair.rebroadcast, repair.drop, repair.note) == (10, [], [], None)


def test_nonce_used_outside_the_writer_jumps_ahead_and_drops_lost_txs() -> None:
    # We signed 5 and 6; someone else used the key for 5..8 and they are mined.
    repair = reconcile(7, 9, 9, [5, 6])
    assert repair.next_nonce == 9
    assert repair.drop == [5, 6] and repair.rebroadcast == []
    assert repair.note and "drifted up from 7 to 9" in repair.note


def test_node_that_lost_our_txs_gets_them_again_in_order() -> None:
    repair = reconcile(10, 6, 6, [9, 6, 7, 8])
    assert repair.next_nonce == 10 and repair.rebroadcast == [6, 7, 8, 9] and repair.drop == []


def test_a_hole_rewinds_the_nonce_and_resends_what_is_above() -> None:
    # Nonce 7 has no recorded tx of ours: 8 and 9 could never mine.
    repair = reconcile(10, 6, 6, [6, 8, 9])
    assert repair.next_nonce == 7
    assert repair.rebroadcast == [6] and repair.drop == [8, 9]


def test_a_lost_nonce_below_latest_is_dropped_even_in_step() -> None:
    repair = reconcile(10, 10, 10, [4])
    assert repair.next_nonce == 10 and repair.drop == [4]


def test_inconsistent_chain_answer_is_refused() -> None:
    with pytest.raises(ValueError):
        reconcile(1, 5, 4, [])
