"""EIP-1559 fee rules (pure): the first offer, when to replace, the replacement, the cap.

A replacement must raise both ``maxFeePerGas`` and ``maxPriorityFeePerGas`` by at least 10%
or nodes refuse it as underpriced; ``bump_percent`` (>= 10) is applied to both, and the new
max fee also covers twice the current base fee. Nothing goes above ``max_fee_cap``: a
transaction already at the cap is not replaced again (it waits, and ``stride chain status``
shows it as stuck at the cap).
"""

from __future__ import annotations

from dataclasses import dataclass

GWEI = 10**9


@dataclass(frozen=True)
class FeePolicy:
    max_fee_cap: int  # wei
    min_priority_fee: int  # wei
    bump_after_blocks: int
    bump_percent: int = 25

    def __post_init__(self) -> None:
        if self.bump_percent < 10:
            raise ValueError("a replacement must raise fees by 10% at least")
        if self.max_fee_cap <= 0 or self.bump_after_blocks < 1:
            raise ValueError("the fee cap must be positive and bumps wait one block at least")


@dataclass(frozen=True)
class Fees:
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


def _up(value: int, percent: int) -> int:
    return -(-value * (100 + percent) // 100)  # ceiling


def initial_fees(base_fee: int, priority_hint: int, policy: FeePolicy) -> Fees:
    """What a new transaction offers: the node's tip (at least the policy's), and twice the
    base fee on top (room for six full blocks of base fee rises), both under the cap."""
    tip = min(max(priority_hint, policy.min_priority_fee), policy.max_fee_cap)
    return Fees(min(2 * base_fee + tip, policy.max_fee_cap), tip)


def should_bump(broadcast_block: int | None, head: int, policy: FeePolicy) -> bool:
    """True when a transaction broadcast at ``broadcast_block`` is still unmined at ``head``
    after ``bump_after_blocks`` blocks."""
    return broadcast_block is not None and head - broadcast_block >= policy.bump_after_blocks


def bumped(current: Fees, base_fee: int, policy: FeePolicy) -> Fees | None:
    """The replacement's fees, or None when the cap leaves no valid replacement."""
    tip = _up(current.max_priority_fee_per_gas, policy.bump_percent)
    max_fee = max(_up(current.max_fee_per_gas, policy.bump_percent), 2 * base_fee + tip)
    max_fee = min(max_fee, policy.max_fee_cap)
    tip = min(tip, max_fee)
    # Nodes accept a replacement only if both fees rose by 10% at least.
    too_small = max_fee < _up(current.max_fee_per_gas, 10) or tip < _up(
        current.max_priority_fee_per_gas, 10
    )
    return None if too_small else Fees(max_fee, tip)
