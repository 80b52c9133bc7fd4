"""The battle engine, pure and deterministic: a request's sides and ratings and a seed give
one result, always. Nothing here reads a clock, a database or global randomness.

Each side's strength is the sum of its players' rating means (``mu``); the chance a side
finishes first is Plackett-Luce's, ``exp(s_i / SCALE) / sum_j exp(s_j / SCALE)``, and the
finishing order is drawn place by place from a ``random.Random(seed)``. The sides are put in
a canonical order (by their sorted player ids) before drawing, so naming the sides in another
order gives the same result for the same seed. The seed is derived from the battle id, so a
replayed battle draws the same numbers; it is stored beside :data:`ENGINE_VERSION` so a result
can be re-derived and explained.

Version 2 adds items: a player's strength is their ``mu`` plus :data:`ITEM_WEIGHT` times the
``power`` of the items they own (:func:`item_power`: quantity times the catalog item's numeric
``power`` property, summed). The items read are passed in (and stored with the battle by the
caller), so the engine stays pure; a battle where nobody owns power draws as version 1 did.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ENGINE_VERSION = 2
# Rating points one unit of item power adds to its owner's strength.
ITEM_WEIGHT = 1.0
# Logistic scale in rating points: a side stronger by one default sigma (25/3 = 8.3) wins a
# duel about 73% of the time.
SCALE = 8.0

Side = Sequence[tuple[str, float]]  # (player id, rating mean) of each player of a side
OwnedItem = tuple[str, int, float]  # (item id, quantity, power per unit)


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


def item_power(owned: Sequence[OwnedItem]) -> float:
    """The power a player's items give: quantity times power per unit, summed."""
    return math.fsum(quantity * power for _item, quantity, power in owned)


def strength(side: Side, power: Mapping[str, float] | None = None) -> float:
    """A side's strength: its players' rating means plus their item power (weighted)."""
    power = power or {}
    return math.fsum(mu + ITEM_WEIGHT * power.get(player, 0.0) for player, mu in side)


def win_probabilities(strengths: Sequence[float]) -> list[float]:
    """Plackett-Luce first-place probabilities (a softmax, computed stably)."""
    top = max(strengths)
    weights = [math.exp((s - top) / SCALE) for s in strengths]
    total = math.fsum(weights)
    return [w / total for w in weights]


def _canonical(sides: Sequence[Side]) -> list[int]:
    return sorted(range(len(sides)), key=lambda i: sorted(p for p, _mu in sides[i]))


def resolve(
    sides: Sequence[Side], seed: int, power: Mapping[str, float] | None = None
) -> BattleResult:
    """The finishing order of ``sides`` for ``seed``, ``power`` being each player's item
    power (:func:`item_power`; a player not named has none). See the module docstring."""
    if len(sides) < 2:
        raise ValueError("a battle needs two or more sides")
    strengths = [strength(side, power) for side in sides]
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
