"""Nonce reconciliation rules (pure): the writer's local nonces against the chain's.

The writer allocates nonces locally without gaps (``chain_senders.next_nonce``, in the same
transaction that records the signed transaction), so it never waits for the node. The chain
says ``latest`` (transactions mined) and ``pending`` (mined plus the node's mempool). On
start, periodically and after a "nonce too low" answer the two are compared:

- ``pending > next``: nonces were used outside the writer (the key sent elsewhere, a
  restored database). Jump to ``pending``; our unmined transactions below ``latest`` lost
  their nonce to another transaction and are dropped, their commands sent again.
- ``pending < next``: the node lost some of our transactions (restart, mempool eviction,
  a reorg). Each one we recorded is broadcast again, in nonce order. A nonce in the gap
  with no transaction of ours (a hole) would block every later one: the writer rewinds to
  the hole and drops (to resend) the transactions above it.
- ``pending == next``: in step; nothing to do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class NonceRepair:
    next_nonce: int
    rebroadcast: list[int] = field(default_factory=list)  # in order
    drop: list[int] = field(default_factory=list)
    note: str | None = None  # what was repaired, for the log and chain_senders.last_repair


def reconcile(
    local_next: int | None, chain_latest: int, chain_pending: int, unmined: Iterable[int]
) -> NonceRepair:
    """``unmined``: nonces of our recorded transactions with no receipt (signed or sent)."""
    ours = sorted(set(unmined))
    if chain_pending < chain_latest:
        raise ValueError("pending nonce below latest: not a consistent answer")
    if local_next is None:
        return NonceRepair(chain_pending, note=f"started at the chain's nonce {chain_pending}")
    lost = [n for n in ours if n < chain_latest]  # their nonce was mined by another tx
    if chain_pending > local_next:
        return NonceRepair(
            chain_pending,
            drop=lost,
            note=f"nonce drifted up from {local_next} to {chain_pending} (used outside the "
            f"writer); {len(lost)} transaction(s) lost their nonce and are sent again",
        )
    holes = sorted(set(range(chain_pending, local_next)) - set(ours))
    if holes:
        hole = holes[0]
        return NonceRepair(
            hole,
            rebroadcast=[n for n in ours if chain_pending <= n < hole],
            drop=lost + [n for n in ours if n > hole],
            note=f"nonce {hole} has no transaction of ours: rewound from {local_next}",
        )
    resend = [n for n in ours if chain_pending <= n < local_next]
    if resend or lost:
        return NonceRepair(
            local_next,
            rebroadcast=resend,
            drop=lost,
            note=f"the node lost {len(resend)} of our transaction(s) from nonce "
            f"{chain_pending} (broadcast again); {len(lost)} lost their nonce (sent again)",
        )
    return NonceRepair(local_next)
