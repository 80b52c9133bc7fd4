"""Write quotas per credential: a token bucket per game key or app user, in this process.

Each API worker process keeps its own buckets, so a worker gets ``1 / workers`` of the
configured rate and burst (the total across workers is the configured quota). Buckets live
in a bounded LRU map: a stranger with many keys cannot grow it past ``max_owners``.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from cachetools import LRUCache


@dataclass
class _Bucket:
    tokens: float
    updated: float


class Quota:
    """``rate`` units per second with bursts of ``burst`` units, per owner."""

    def __init__(self, rate: float, burst: float, *, max_owners: int = 100_000) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("a quota needs a positive rate and burst")
        self.rate = rate
        self.burst = burst
        self._buckets: LRUCache[str, _Bucket] = LRUCache(max_owners)
        self._lock = threading.Lock()

    def take(self, owner: str, units: float = 1, now: float | None = None) -> float | None:
        """Spend ``units`` of ``owner``'s quota: None when allowed, else the seconds to wait
        before that much is available again (nothing is spent then)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(owner)
            if bucket is None:
                bucket = self._buckets[owner] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if units <= bucket.tokens:
                bucket.tokens -= units
                return None
            if units > self.burst:  # never possible at once: the wait to refill the burst
                return self.burst / self.rate
            return (units - bucket.tokens) / self.rate


def retry_after_header(wait_s: float) -> str:
    """Whole seconds, at least 1 (``Retry-After`` takes an integer)."""
    return str(max(1, math.ceil(wait_s)))
