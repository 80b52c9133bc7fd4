"""The get_score formula: properties that must hold for every finite input."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.scores.formula import FORMULA_VERSION, SCORE_BOUND, compute_score

finite = st.floats(allow_nan=False, allow_infinity=False)


def test_known_values() -> None:
    assert compute_score(0) == 0
    assert compute_score(42.5) == 401.1343
    assert compute_score(100) == round(1000 * math.tanh(1), 4)
    assert FORMULA_VERSION == 1


@given(finite)
def test_bounded(value: float) -> None:
    assert -SCORE_BOUND <= compute_score(value) <= SCORE_BOUND


@given(finite)
def test_odd(value: float) -> None:
    assert compute_score(-value) == -compute_score(value)


@given(finite, finite)
def test_monotonic(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert compute_score(low) <= compute_score(high)


@given(st.floats(min_value=-1, max_value=1))
def test_roughly_ten_times_input_near_zero(value: float) -> None:
    assert compute_score(value) == pytest.approx(10 * value, abs=1e-3)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_rejects_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        compute_score(bad)
