"""The get_score formula: a pure function, versioned so logged scores stay explainable.

Formula v1 (a placeholder until the game designers ship a real one)::

    score = round(1000 * tanh(input / 100), 4)

Why this shape: it is defined for every finite number, strictly increasing in ``input``,
odd (``score(-x) == -score(x)``), bounded to ``[-1000, 1000]`` (no overflow whatever a
client sends) and roughly linear (``~10 * input``) for small inputs, so it is easy to
eyeball. ``FORMULA_VERSION`` is stored with every logged score.
"""

from __future__ import annotations

import math

FORMULA_VERSION = 1
SCORE_BOUND = 1000.0
INPUT_SCALE = 100.0


def compute_score(value: float) -> float:
    """Score of one input under formula ``FORMULA_VERSION``. ``value`` must be finite."""
    if not math.isfinite(value):
        raise ValueError(f"input must be a finite number, got {value!r}")
    return round(SCORE_BOUND * math.tanh(value / INPUT_SCALE), 4)
