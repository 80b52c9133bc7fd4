"""The battle engine, pure and deterministic: a request's sides and ratings and a seed give
one result, always. Nothing here reads a clock, a database or global randomness.

Each side's strength is the sum of its players' rating means (``mu``); the chance a side
finishes first is Plackett-Luce's, ``exp(s_i / SCALE) / sum_j exp(s_j / SCALE)``, and the
finishing order is drawn place by place from a ``random.Random(seed)``. The sides are put in
a canonical order (by their sorted player ids) before drawing, so naming the sides in another
order gives the same result for the same seed. The seed is derived from the battle id, so a
replayed battle draws the same numbers; it is stored beside :data:`ENGINE_VERSION` so a result
can be re-derived and explained. Items (the content issue) are not used yet.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

ENGINE_VERSION = 1
# Logistic scale in rating points: a side stronger by one default sigma (25/3 = 8.3) wins a
# duel about 73% of the time.
SCALE = 8.0

Side = Sequence[tuple[str, float]]  # (player id, rating mean) of each player of a side


@dataclass(frozen=True)
class BattleResult:
    ranks: tuple[int, ...]  # per side, in the request's order: 1 is the winner
    win_probabilities: tuple[float, ...]  # per side: its chance to finish first
    seed: int
    engine_version: int = ENGINE_VERSION


def seed_of(battle_id: uuid.UUID) -> int:
    """A 63-bit seed from the battle id (fits PostgreSQL's BIGINT)."""
    digest = hashlib.sha256(b"stride-battle-seed/" + battle_id.bytes).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def strength(side: Side) -> float:
    return math.fsum(mu for _player, mu in side)


def win_probabilities(strengths: Sequence[float]) -> list[float]:
    """Plackett-Luce first-place probabilities (a softmax, computed stably)."""
    top = max(strengths)
    weights = [math.exp((s - top) / SCALE) for s in strengths]
    total = math.fsum(weights)
    return [w / total for w in weights]


def _canonical(sides: Sequence[Side]) -> list[int]:
    return sorted(range(len(sides)), key=lambda i: sorted(p for p, _mu in sides[i]))


def resolve(sides: Sequence[Side], seed: int) -> BattleResult:
    """The finishing order of ``sides`` for ``seed`` (see the module docstring)."""
    if len(sides) < 2:
        raise ValueError("a battle needs two or more sides")
    strengths = [strength(side) for side in sides]
    rng = random.Random(seed)  # noqa: S311 - a game's dice, not a secret
    remaining = _canonical(sides)
    ranks = [0] * len(sides)
    place = 1
    while len(remaining) > 1:
        chances = win_probabilities([strengths[i] for i in remaining])
        draw = rng.random()
        cumulative = 0.0
        chosen = remaining[-1]  # float rounding: the last one takes what is left
        for index, chance in zip(remaining, chances, strict=True):
            cumulative += chance
            if draw < cumulative:
                chosen = index
                break
        ranks[chosen] = place
        remaining.remove(chosen)
        place += 1
    ranks[remaining[0]] = place
    return BattleResult(tuple(ranks), tuple(win_probabilities(strengths)), seed)


def score_of(rank: int, sides: int) -> int:
    """Points a ``match_result`` reports for a place: 100 for the winner, 0 for the last."""
    return round(100 * (sides - rank) / (sides - 1))
