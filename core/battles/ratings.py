"""Skill ratings with OpenSkill's Weng-Lin **Plackett-Luce** model (``openskill`` 6.2).

Why Plackett-Luce: battles have two *or more* sides of any size, and Plackett-Luce rates a
full finishing order of many teams in time linear in the number of teams (the pairwise
Bradley-Terry and Thurstone-Mosteller "full" models are quadratic); it is the library's
default and the model its authors recommend for free-for-all and team games. Its ``mu`` is
also what the engine's Plackett-Luce draw reads, so the engine and the ratings agree on what
a strength means. Default parameters (mu 25, sigma 25/3, beta 25/6): a change would need a
new engine version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from openskill.models import PlackettLuce

MODEL = PlackettLuce()
MODEL_NAME = "openskill.PlackettLuce"


@dataclass(frozen=True)
class Rating:
    mu: float
    sigma: float

    @property
    def ordinal(self) -> float:
        """A conservative skill for ranking people: ``mu - 3 sigma``."""
        return self.mu - 3 * self.sigma


def initial() -> Rating:
    return Rating(MODEL.mu, MODEL.sigma)


def rate(teams: Sequence[Sequence[Rating]], ranks: Sequence[int]) -> list[list[Rating]]:
    """The ratings of every player after one battle (``ranks``: 1 is the winner, per team)."""
    given = [[MODEL.rating(mu=r.mu, sigma=r.sigma) for r in team] for team in teams]
    rated = MODEL.rate(given, ranks=[float(rank) for rank in ranks])
    return [[Rating(r.mu, r.sigma) for r in team] for team in rated]
