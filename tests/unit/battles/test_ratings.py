"""Ratings equal OpenSkill's own Plackett-Luce result for the same sequence of battles."""

from hypothesis import given
from hypothesis import strategies as st
from openskill.models import PlackettLuce

from core.battles import ratings


@given(
    st.lists(
        st.tuples(st.lists(st.integers(0, 5), min_size=2, max_size=4, unique=True), st.randoms()),
        min_size=1,
        max_size=15,
    )
)
def test_a_sequence_of_battles_rates_as_openskill_does(battles) -> None:
    model = PlackettLuce()
    theirs = {p: model.rating(name=str(p)) for p in range(6)}
    ours = {p: ratings.initial() for p in range(6)}
    for players, rnd in battles:
        ranks = list(range(1, len(players) + 1))
        rnd.shuffle(ranks)
        rated = model.rate([[theirs[p]] for p in players], ranks=ranks)
        for p, team in zip(players, rated, strict=True):
            theirs[p] = team[0]
        mine = ratings.rate([[ours[p]] for p in players], ranks)
        for p, team in zip(players, mine, strict=True):
            ours[p] = team[0]
    for p in range(6):
        assert (ours[p].mu, ours[p].sigma) == (theirs[p].mu, theirs[p].sigma)


def test_teams_are_rated_and_the_winner_gains() -> None:
    start = ratings.initial()
    after = ratings.rate([[start, start], [start]], [1, 2])
    assert all(r.mu > start.mu for r in after[0])
    assert after[1][0].mu < start.mu
    assert ratings.Rating(25, 8).ordinal == 1
