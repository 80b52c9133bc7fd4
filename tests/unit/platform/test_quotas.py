"""Token buckets per owner: bursts allowed, the rate holds, owners do not share."""

import pytest

from core.platform.quotas import Quota, retry_after_header


def test_a_burst_is_allowed_then_the_rate_holds() -> None:
    quota = Quota(rate=10, burst=20)
    assert quota.take("game-a", 20, now=0.0) is None
    wait = quota.take("game-a", 5, now=0.0)
    assert wait == pytest.approx(0.5)  # 5 units at 10/s
    assert quota.take("game-a", 5, now=0.5) is None
    assert quota.take("game-b", 20, now=0.5) is None  # another owner has its own bucket


def test_a_refused_take_spends_nothing_and_more_than_the_burst_says_how_long() -> None:
    quota = Quota(rate=100, burst=1000)
    assert quota.take("g", 900, now=0.0) is None
    assert quota.take("g", 200, now=0.0) is not None
    assert quota.take("g", 100, now=0.0) is None  # the refused 200 were not spent
    assert quota.take("g", 5000, now=0.0) == pytest.approx(10.0)
    assert retry_after_header(0.01) == "1" and retry_after_header(2.2) == "3"


def test_owners_are_bounded() -> None:
    quota = Quota(rate=1, burst=1, max_owners=3)
    for owner in "abcdef":
        quota.take(owner, now=0.0)
    assert len(quota._buckets) == 3
