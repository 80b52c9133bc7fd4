"""The API's per-process cache of series and rankings (api/routes/metrics.py): bounded by
count and by bytes, expiring, and computing a key once for concurrent misses."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from api.etags import content_tag, tag_matches
from api.routes.metrics import Body, TtlCache, _weight


def body(n: int) -> Body:
    json = b"x" * n
    return Body(json, content_tag(json))


def test_the_bytes_bound_drops_the_oldest_answers() -> None:
    cache = TtlCache(60, size=100, max_bytes=10_000, weight=_weight)
    for i in range(20):
        cache.get_or_compute(("series", i), lambda: body(1_000))
    assert cache.bytes <= 10_000 and len(cache) == 8  # 8 x (1,000 + 200)
    calls: list[int] = []
    cache.get_or_compute(("series", 19), lambda: calls.append(19) or body(1))  # kept: a hit
    cache.get_or_compute(("series", 0), lambda: calls.append(0) or body(1))  # dropped
    assert calls == [0]


def test_an_answer_larger_than_the_cache_is_served_not_kept() -> None:
    cache = TtlCache(60, max_bytes=1_000, weight=_weight)
    assert cache.get_or_compute(("big",), lambda: body(5_000)).json == b"x" * 5_000
    assert len(cache) == 0 and cache.bytes == 0


def test_the_count_bound_and_the_ttl() -> None:
    cache = TtlCache(60, size=3)
    for i in range(5):
        cache.get_or_compute((i,), lambda i=i: i)
    assert len(cache) == 3
    expired = TtlCache(0)
    values = iter([1, 2])
    assert expired.get_or_compute(("k",), lambda: next(values)) == 1
    assert expired.get_or_compute(("k",), lambda: next(values)) == 2  # a TTL of 0: no hit


def test_concurrent_misses_of_one_key_compute_it_once() -> None:
    cache = TtlCache(60)
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        started.set()
        assert release.wait(10)
        return 42

    with ThreadPoolExecutor(8) as pool:
        leader = pool.submit(cache.get_or_compute, ("k",), slow)
        assert started.wait(10)
        followers = [pool.submit(cache.get_or_compute, ("k",), slow) for _ in range(7)]
        release.set()
        assert leader.result() == 42 and [f.result() for f in followers] == [42] * 7
    assert calls == [1]


def test_a_failed_computation_is_not_cached_and_not_shared() -> None:
    cache = TtlCache(60)

    def missing() -> int:
        raise LookupError("no such metric")

    with pytest.raises(LookupError):
        cache.get_or_compute(("k",), missing)
    assert cache.get_or_compute(("k",), lambda: 7) == 7


def test_if_none_match_compares_weakly_and_ignores_what_does_not_parse() -> None:
    tag = content_tag(b"{}")
    assert tag_matches(tag, tag) and tag_matches(f"W/{tag}", tag) and tag_matches("*", tag)
    assert tag_matches(f'"other", {tag}', tag)
    assert not tag_matches('"other"', tag) and not tag_matches(None, tag)
    assert not tag_matches(tag[1:-1], tag)  # unquoted: not a tag


def test_peek_answers_fresh_hits_only() -> None:
    cache = TtlCache(60)
    assert cache.peek(("k",)) is None
    cache.get_or_compute(("k",), lambda: "answer")
    assert cache.peek(("k",)) == "answer"
    assert TtlCache(0).peek(("k",)) is None
