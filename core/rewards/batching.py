"""Batching rules (pure): token units, the contract's command keys, batches and gas.

One ``mintBatch`` pays up to ``batch_size`` commands; the gas limit is a per-entry cost with
headroom (``bench/chain_writer.py`` measured 36,090 gas per reward on average, batches of
256 over 500 holders; a first mint to a new holder costs more: two fresh storage slots),
kept under half the block gas limit. Unused gas is not paid for, so a generous limit costs
nothing but block space.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

TOKEN_DECIMALS = 18
CONTRACT_MAX_BATCH = 512  # StrideRewardsDistributor.MAX_BATCH
MINT_BASE_GAS = 60_000
MINT_GAS_PER_ENTRY = 75_000
BURN_GAS = 180_000

T = TypeVar("T")


def to_wei(amount: Decimal) -> int:
    """Token amount (18 decimals) to its smallest unit; refuses what does not fit exactly."""
    wei = amount.scaleb(TOKEN_DECIMALS)
    if wei != wei.to_integral_value() or wei <= 0:
        raise ValueError(f"{amount} is not a positive amount with at most 18 decimals")
    return int(wei)


def command_key(command_id: uuid.UUID) -> bytes:
    """The contract's ``bytes32`` key of a command: its 16 UUID bytes, left-padded."""
    return command_id.bytes.rjust(32, b"\0")


def command_of_key(key: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=bytes(key)[-16:])


def mint_gas_limit(entries: int) -> int:
    return MINT_BASE_GAS + MINT_GAS_PER_ENTRY * entries


def batch_size_for(batch_size: int, block_gas_limit: int) -> int:
    """The configured size, bounded by the contract and by what fits in half a block."""
    fits = (block_gas_limit // 2 - MINT_BASE_GAS) // MINT_GAS_PER_ENTRY
    return max(1, min(batch_size, CONTRACT_MAX_BATCH, fits))


@dataclass(frozen=True)
class MintEntry:
    command_id: uuid.UUID
    recipient: str
    amount_wei: int


def batches(items: Sequence[T], size: int, max_batches: int) -> list[list[T]]:
    """``items`` in order, cut into at most ``max_batches`` lists of ``size`` (the last may
    be shorter); what does not fit waits for the next pass."""
    if size < 1 or max_batches < 0:
        raise ValueError("size must be >= 1 and max_batches >= 0")
    return [list(items[i : i + size]) for i in range(0, len(items), size)][:max_batches]
