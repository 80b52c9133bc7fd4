"""Pairing by rating with a window that widens with waiting time (pure)."""

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from core.battles.matchmaking import Waiting, Window, pair

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
WINDOW = Window(base=3.0, widen_per_s=1.0, widest=25.0)


def ticket(player: str, mu: float, waited_s: float = 0.0) -> Waiting:
    return Waiting(uuid.uuid4(), player, mu, NOW - timedelta(seconds=waited_s))


def names(pairs) -> list[tuple[str, str]]:
    return [(a.player_id, b.player_id) for a, b in pairs]


def test_close_ratings_pair_far_ones_wait_until_the_window_widens() -> None:
    assert names(pair([ticket("a", 25), ticket("b", 27)], NOW, WINDOW)) == [("a", "b")]
    assert pair([ticket("a", 25), ticket("c", 35)], NOW, WINDOW) == []
    assert names(pair([ticket("a", 25, waited_s=8), ticket("c", 35)], NOW, WINDOW)) == [("a", "c")]
    assert pair([ticket("a", 0, waited_s=1000), ticket("c", 40)], NOW, WINDOW) == []  # widest


def test_neighbours_by_rating_are_paired() -> None:
    got = names(
        pair([ticket("a", 10), ticket("b", 30), ticket("c", 11), ticket("d", 31)], NOW, WINDOW)
    )
    assert got == [("a", "c"), ("b", "d")]


@given(st.lists(st.tuples(st.floats(0, 50), st.floats(0, 300)), max_size=40))
def test_a_ticket_is_in_one_pair_at_most_and_each_pair_fits_its_window(specs) -> None:
    tickets = [ticket(f"p{i}", mu, waited) for i, (mu, waited) in enumerate(specs)]
    pairs = pair(tickets, NOW, WINDOW)
    used = [t.ticket_id for p in pairs for t in p]
    assert len(used) == len(set(used))
    for a, b in pairs:
        waited = (NOW - min(a.created_at, b.created_at)).total_seconds()
        assert abs(a.mu - b.mu) <= WINDOW.at(waited)
