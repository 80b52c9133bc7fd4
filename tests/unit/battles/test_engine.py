"""The pure battle engine: deterministic, fair, symmetric, monotone in strength."""

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.battles.engine import (
    ENGINE_VERSION,
    item_power,
    resolve,
    score_of,
    seed_of,
    win_probabilities,
)

mus = st.floats(min_value=0, max_value=60, allow_nan=False)
seeds = st.integers(min_value=0, max_value=2**63 - 1)


def duel(mu_a: float, mu_b: float, seed: int, order: str = "ab") -> tuple[int, int]:
    sides = {"a": [("ann", mu_a)], "b": [("bob", mu_b)]}
    ranks = resolve([sides[order[0]], sides[order[1]]], seed).ranks
    return (ranks[0], ranks[1]) if order == "ab" else (ranks[1], ranks[0])


@given(st.lists(st.lists(mus, min_size=1, max_size=4), min_size=2, max_size=6), seeds)
def test_the_same_request_gives_the_same_result(strengths, seed) -> None:
    sides = [[(f"p{i}-{j}", mu) for j, mu in enumerate(side)] for i, side in enumerate(strengths)]
    first = resolve(sides, seed)
    assert resolve(sides, seed) == first
    assert sorted(first.ranks) == list(range(1, len(sides) + 1))
    assert first.seed == seed and first.engine_version == ENGINE_VERSION


@given(st.lists(mus, min_size=2, max_size=6, unique=True), seeds, st.randoms())
def test_symmetric_when_the_sides_are_swapped(strengths, seed, rnd) -> None:
    sides = [[(f"p{i}", mu)] for i, mu in enumerate(strengths)]
    ranks = dict(zip((s[0][0] for s in sides), resolve(sides, seed).ranks, strict=True))
    shuffled = sides[:]
    rnd.shuffle(shuffled)
    swapped = dict(zip((s[0][0] for s in shuffled), resolve(shuffled, seed).ranks, strict=True))
    assert swapped == ranks


@given(mus, mus, st.floats(min_value=0, max_value=30), seeds)
def test_monotone_a_stronger_winner_still_wins(mu_a, mu_b, boost, seed) -> None:
    if duel(mu_a, mu_b, seed)[0] == 1:
        assert duel(mu_a + boost, mu_b, seed)[0] == 1
    assert win_probabilities([mu_a + boost, mu_b])[0] >= win_probabilities([mu_a, mu_b])[0]


@given(st.lists(mus, min_size=2, max_size=8), st.integers(0, 7), st.floats(0, 30))
def test_monotone_in_strength_with_many_sides(strengths, index, boost) -> None:
    index %= len(strengths)
    boosted = list(strengths)
    boosted[index] += boost
    assert win_probabilities(boosted)[index] >= win_probabilities(strengths)[index] - 1e-12


@settings(max_examples=10, deadline=None)
@given(mus, st.integers(2, 4))
def test_fair_between_equals_within_a_tolerance(mu, sides_count) -> None:
    sides = [[(f"p{i}", mu)] for i in range(sides_count)]
    runs = 4000
    wins = [0] * sides_count
    for n in range(runs):
        wins[resolve(sides, seed_of(uuid.UUID(int=n))).ranks.index(1)] += 1
    expected = runs / sides_count
    # 5 standard deviations of a binomial: a fair engine fails this about once in 3 million.
    tolerance = 5 * (runs * (1 / sides_count) * (1 - 1 / sides_count)) ** 0.5
    assert all(abs(w - expected) <= tolerance for w in wins), wins


def test_a_much_stronger_side_wins_almost_always() -> None:
    wins = sum(duel(50, 10, seed_of(uuid.UUID(int=n)))[0] == 1 for n in range(1000))
    assert wins > 980


def test_seed_is_derived_from_the_battle_id_and_fits_a_bigint() -> None:
    battle = uuid.uuid4()
    assert seed_of(battle) == seed_of(uuid.UUID(str(battle)))
    assert 0 <= seed_of(battle) < 2**63
    assert seed_of(battle) != seed_of(uuid.uuid4())


def test_scores_per_place() -> None:
    assert [score_of(r, 2) for r in (1, 2)] == [100, 0]
    assert [score_of(r, 3) for r in (1, 2, 3)] == [100, 50, 0]


powers = st.floats(min_value=0, max_value=40, allow_nan=False)


@given(mus, mus, powers, powers, seeds)
def test_items_add_their_power_to_the_strength(mu_a, mu_b, power_a, power_b, seed) -> None:
    sides = [[("ann", mu_a)], [("bob", mu_b)]]
    with_items = resolve(sides, seed, {"ann": power_a, "bob": power_b})
    as_ratings = resolve([[("ann", mu_a + power_a)], [("bob", mu_b + power_b)]], seed)
    assert with_items.ranks == as_ratings.ranks
    assert with_items.win_probabilities == as_ratings.win_probabilities
    assert resolve(sides, seed, {}) == resolve(sides, seed)  # no items: as without


@given(mus, mus, powers, st.floats(min_value=0, max_value=30), seeds)
def test_monotone_in_item_power(mu_a, mu_b, power, boost, seed) -> None:
    sides = [[("ann", mu_a)], [("bob", mu_b)]]
    before = resolve(sides, seed, {"ann": power})
    after = resolve(sides, seed, {"ann": power + boost})
    if before.ranks[0] == 1:
        assert after.ranks[0] == 1
    assert after.win_probabilities[0] >= before.win_probabilities[0] - 1e-12


@given(st.lists(st.lists(mus, min_size=1, max_size=3), min_size=2, max_size=5), seeds, powers)
def test_symmetric_with_items_when_the_sides_are_swapped(strengths, seed, power) -> None:
    sides = [[(f"p{i}-{j}", mu) for j, mu in enumerate(side)] for i, side in enumerate(strengths)]
    owned = {"p0-0": power, "p1-0": power / 2}
    ranks = resolve(sides, seed, owned).ranks
    flipped = resolve(sides[::-1], seed, owned).ranks
    assert tuple(reversed(flipped)) == ranks


@given(st.lists(st.tuples(st.text(max_size=8), st.integers(1, 1000), powers), max_size=10))
def test_item_power_is_quantity_times_power(owned) -> None:
    assert item_power(owned) == pytest.approx(sum(q * p for _i, q, p in owned))
    assert item_power(owned) >= 0
