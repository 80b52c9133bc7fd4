"""The totals fold: counts per outcome, score sums and bests, token spend, one row per player."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from core.events.contracts import GameEvent, MatchResult, Purchase, ScoreReached, SessionEnd
from core.events.totals import fold_totals

T0 = datetime(2026, 11, 22, tzinfo=UTC)


def event(player: str, payload) -> GameEvent:
    return GameEvent(
        event_id=uuid.uuid4(),
        game_id="tri",
        player_id=player,
        type=payload.type,
        payload=payload,
        occurred_at=T0,
    )


def test_fold_counts_outcomes_scores_and_spend() -> None:
    events = [
        event("a", MatchResult(outcome="win", score=10)),
        event("a", MatchResult(outcome="loss", score=3)),
        event("a", ScoreReached(score=50)),
        event("a", Purchase(item="x", price=Decimal("1.5"), currency="STRIDE")),
        event("a", Purchase(item="y", price=Decimal("9"), currency="USD")),
        event("a", SessionEnd(session_id="s", duration_s=30)),
        event("b", MatchResult(outcome="draw", score=-4)),
    ]
    times = [T0 + timedelta(seconds=i) for i in range(len(events))]
    a, b = fold_totals(zip(events, times, strict=True), token="STRIDE")
    assert (a.player_id, a.events, a.matches, a.wins, a.losses, a.draws) == ("a", 6, 2, 1, 1, 0)
    assert (a.total_score, a.best_score, a.purchases, a.token_spent) == (63, 50, 2, Decimal("1.5"))
    assert a.play_seconds == 30
    assert (a.first_event_at, a.last_event_at) == (times[0], times[5])
    assert (b.player_id, b.draws, b.total_score, b.best_score) == ("b", 1, -4, -4)


scores = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(-1000, 1000)), max_size=40
)


@given(scores, scores)
def test_folding_two_batches_adds_up_to_folding_them_together(first, second) -> None:
    def fold(items):
        return {
            d.player_id: d
            for d in fold_totals(
                ((event(p, ScoreReached(score=s)), T0) for p, s in items), "STRIDE"
            )
        }

    together = fold(first + second)
    left, right = fold(first), fold(second)
    for player, total in together.items():
        parts = [d for d in (left.get(player), right.get(player)) if d]
        assert total.events == sum(d.events for d in parts)
        assert total.total_score == sum(d.total_score for d in parts)
        assert total.best_score == max(d.best_score for d in parts)
    assert list(together) == sorted(together)  # lock order for concurrent writers
