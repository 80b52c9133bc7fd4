"""The leaderboard store against the real PostgreSQL: idempotent submissions, exact ranks,
stable cursors, neighbours, periods, resets and archived standings."""

from __future__ import annotations

import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.identity.game_keys import create_game
from core.leaderboards import blocks, definitions, errors, reads, writer
from core.leaderboards.rules import (
    EPOCH,
    Operator,
    RecordState,
    ScoreSubmission,
    SortOrder,
    apply_submission,
    rank_key,
)
from core.platform.db import session_scope

T0 = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday
WEEKLY = "0 0 * * 1"


def new_game() -> str:
    game_id = f"g-{uuid.uuid4().hex[:10]}"
    with session_scope() as session:
        create_game(session, game_id, game_id)
    return game_id


def new_board(engine: Engine, game_id: str, **kwargs) -> str:
    board_id = f"lb-{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        definitions.create_leaderboard(
            conn, leaderboard_id=board_id, game_id=game_id, now=T0, **kwargs
        )
    return board_id


def sub(game_id: str, owner: str, score: int, at: datetime) -> ScoreSubmission:
    return ScoreSubmission(game_id, owner, score, uuid.uuid4(), at)


def submit(engine: Engine, subs: list[ScoreSubmission], now: datetime = T0) -> None:
    with engine.begin() as conn:
        writer.submit_scores(conn, subs, now=now)


def records(engine: Engine, board_id: str) -> dict[str, tuple[int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT owner_id, score, num_score FROM leaderboard_records"
                " WHERE leaderboard_id = :b"
            ),
            {"b": board_id},
        )
        return {r.owner_id: (r.score, r.num_score) for r in rows}


def test_replayed_and_duplicated_events_never_double_count(db_engine: Engine) -> None:
    game = new_game()
    incr = new_board(db_engine, game, operator=Operator.incr)
    best = new_board(db_engine, game, operator=Operator.best)
    batch = [sub(game, f"p{i % 7}", i, T0 + timedelta(seconds=i)) for i in range(50)]
    submit(db_engine, batch + batch[:10])  # duplicates inside one batch
    first = records(db_engine, incr)
    submit(db_engine, batch)  # the same batch again
    submit(db_engine, list(reversed(batch[20:])))  # a partial replay
    assert records(db_engine, incr) == first
    totals: dict[str, int] = {}
    for s in batch:
        totals[s.owner_id] = totals.get(s.owner_id, 0) + s.score
    assert {o: score for o, (score, _) in first.items()} == totals
    assert sum(n for _, n in first.values()) == 50
    assert {o: score for o, (score, _) in records(db_engine, best).items()} == {
        f"p{i}": max(s.score for s in batch if s.owner_id == f"p{i}") for i in range(7)
    }


def test_a_rolled_back_batch_leaves_nothing_and_can_be_retried(db_engine: Engine) -> None:
    game = new_game()
    board = new_board(db_engine, game, operator=Operator.incr)
    batch = [sub(game, "p1", 5, T0), sub(game, "p2", 7, T0)]
    with pytest.raises(RuntimeError), db_engine.begin() as conn:
        writer.submit_scores(conn, batch, now=T0)
        raise RuntimeError("the caller's transaction fails after the leaderboard write")
    assert records(db_engine, board) == {}
    submit(db_engine, batch)
    assert records(db_engine, board) == {"p1": (5, 1), "p2": (7, 1)}


def test_concurrent_writers_of_one_game_lose_no_increment(db_engine: Engine) -> None:
    game = new_game()
    board = new_board(db_engine, game, operator=Operator.incr)
    batches = [
        [sub(game, f"p{i % 5}", 1, T0 + timedelta(seconds=w)) for i in range(40)] for w in range(8)
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda batch: submit(db_engine, batch), batches))
    assert records(db_engine, board) == {f"p{i}": (64, 64) for i in range(5)}


def test_a_submission_without_time_zone_or_owner_is_refused(db_engine: Engine) -> None:
    game = new_game()
    new_board(db_engine, game)
    with pytest.raises(ValueError, match="timezone-aware"):
        submit(db_engine, [sub(game, "p1", 1, T0.replace(tzinfo=None))])
    with pytest.raises(ValueError, match="owner_id non-empty"):
        submit(db_engine, [sub(game, "", 1, T0)])


def test_a_score_dated_far_in_the_future_is_seen_but_not_counted(db_engine: Engine) -> None:
    game = new_game()
    board = new_board(db_engine, game, reset_schedule=WEEKLY)
    far = sub(game, "p1", 10, datetime(9999, 12, 31, 23, 59, tzinfo=UTC))
    submit(db_engine, [far, sub(game, "p2", 5, T0)])
    assert records(db_engine, board) == {"p2": (5, 1)}


def test_scores_of_other_games_are_ignored(db_engine: Engine) -> None:
    game, other = new_game(), new_game()
    board = new_board(db_engine, game)
    submit(db_engine, [sub(other, "p1", 100, T0), sub(game, "p2", 1, T0)])
    assert records(db_engine, board) == {"p2": (1, 1)}


def full_order(engine: Engine, board_id: str, period_start: datetime) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT owner_id FROM leaderboard_records WHERE leaderboard_id = :b"
                    " AND period_start = :p ORDER BY sort_key, reached_at, owner_id"
                ),
                {"b": board_id, "p": period_start},
            ).scalars()
        )


@pytest.mark.parametrize("order", [SortOrder.desc, SortOrder.asc])
def test_ranks_stay_exact_while_records_move_between_rank_blocks(
    db_engine: Engine, monkeypatch: pytest.MonkeyPatch, order: SortOrder
) -> None:
    monkeypatch.setattr(blocks, "BLOCK_SIZE", 8)
    monkeypatch.setattr(blocks, "BLOCK_SPLIT_AT", 16)
    game = new_game()
    board = new_board(db_engine, game, sort_order=order, operator=Operator.set)
    rnd = random.Random(7)
    owners = [f"p{i:03d}" for i in range(300)]
    for round_ in range(4):  # every round moves most records to another block
        batch = [
            sub(game, o, rnd.randint(0, 40), T0 + timedelta(seconds=rnd.randint(0, 50)))
            for o in owners
            if rnd.random() < 0.8
        ]
        submit(db_engine, batch, now=T0 + timedelta(minutes=round_))
    with db_engine.connect() as conn:
        period = definitions.get_leaderboard(conn, board).period_start
        stats = conn.execute(
            text(
                "SELECT count(*), sum(size), max(size) FROM leaderboard_rank_blocks"
                " WHERE leaderboard_id = :b"
            ),
            {"b": board},
        ).one()
        expected = full_order(db_engine, board, period)
        assert stats[0] > 10 and stats[1] == len(expected) and stats[2] <= 16
        for rank, owner in enumerate(expected, start=1):
            record = reads.rank_of(conn, board, owner, now=T0)
            assert record is not None and record.rank == rank, owner
        scores = [reads.rank_of(conn, board, o, now=T0).score for o in expected]
    assert scores == sorted(scores, reverse=order is SortOrder.desc)


def test_ties_go_to_the_score_reached_first(db_engine: Engine) -> None:
    game = new_game()
    board = new_board(db_engine, game)
    submit(db_engine, [sub(game, "zed", 50, T0 + timedelta(seconds=1))])
    submit(db_engine, [sub(game, "amy", 50, T0 + timedelta(seconds=2))])
    submit(db_engine, [sub(game, "bob", 50, T0 + timedelta(seconds=1))])
    submit(db_engine, [sub(game, "zed", 50, T0 + timedelta(seconds=9))])  # same score again
    with db_engine.connect() as conn:
        page = reads.top(conn, board, limit=10, now=T0)
    assert [(r.rank, r.owner_id) for r in page.records] == [(1, "bob"), (2, "zed"), (3, "amy")]


def test_cursor_pages_cover_the_standings_once_each_even_while_scores_change(
    db_engine: Engine,
) -> None:
    game = new_game()
    board = new_board(db_engine, game, operator=Operator.set)
    owners = [f"p{i:02d}" for i in range(45)]
    submit(db_engine, [sub(game, o, i * 3, T0) for i, o in enumerate(owners)])
    seen: list[tuple[int, str]] = []
    cursor = None
    with db_engine.connect() as conn:
        first = reads.top(conn, board, limit=10, now=T0)
        seen += [(r.rank, r.owner_id) for r in first.records]
        cursor = first.next_cursor
    # A record far below the cursor moves; pages after the cursor still come in order.
    submit(db_engine, [sub(game, "p00", 1, T0 + timedelta(seconds=1))])
    with db_engine.connect() as conn:
        while cursor:
            page = reads.top(conn, board, limit=10, cursor=cursor, now=T0)
            seen += [(r.rank, r.owner_id) for r in page.records]
            cursor = page.next_cursor
    assert [rank for rank, _ in seen] == list(range(1, 46))
    assert sorted(owner for _, owner in seen) == sorted(owners)


def test_a_cursor_is_checked(db_engine: Engine) -> None:
    game = new_game()
    a, b = new_board(db_engine, game), new_board(db_engine, game)
    submit(db_engine, [sub(game, f"p{i}", i, T0) for i in range(3)])
    with db_engine.connect() as conn:
        cursor = reads.top(conn, a, limit=1, now=T0).next_cursor
        assert cursor
        with pytest.raises(errors.InvalidCursor, match="belongs to leaderboard"):
            reads.top(conn, b, cursor=cursor, now=T0)
        with pytest.raises(errors.InvalidCursor, match="pass next_cursor unchanged"):
            reads.top(conn, a, cursor=cursor[:-4] + "AAAA", now=T0)


def test_around_shows_neighbours_with_their_ranks(db_engine: Engine) -> None:
    game = new_game()
    board = new_board(db_engine, game)
    submit(db_engine, [sub(game, f"p{i}", 100 - i, T0) for i in range(10)])
    with db_engine.connect() as conn:
        middle = reads.around(conn, board, "p5", limit=2, now=T0)
        top_edge = reads.around(conn, board, "p0", limit=2, now=T0)
        missing = reads.around(conn, board, "nobody", limit=2, now=T0)
    assert [(r.rank, r.owner_id) for r in middle] == [
        (4, "p3"),
        (5, "p4"),
        (6, "p5"),
        (7, "p6"),
        (8, "p7"),
    ]
    assert [r.owner_id for r in top_edge] == ["p0", "p1", "p2"]
    assert missing == []


def test_reset_archives_the_period_keeps_it_queryable_and_is_idempotent(db_engine: Engine) -> None:
    game = new_game()
    board = new_board(db_engine, game, operator=Operator.incr)
    submit(db_engine, [sub(game, "p1", 10, T0), sub(game, "p2", 20, T0)])
    reset_at = T0 + timedelta(hours=1)
    with db_engine.begin() as conn:
        old_start = definitions.get_leaderboard(conn, board).period_start
        first = definitions.reset_leaderboard(conn, board, now=reset_at)
    with db_engine.begin() as conn:
        second = definitions.reset_leaderboard(conn, board, now=reset_at + timedelta(seconds=1))
    with db_engine.begin() as conn:
        named = definitions.reset_leaderboard(conn, board, period_start=old_start, now=reset_at)
    assert first.archived == [old_start] and first.current_start == reset_at
    assert second.archived == [] and named.archived == []

    late = sub(game, "p1", 1000, T0 + timedelta(minutes=30))  # happened in the archived period
    fresh = sub(game, "p3", 5, reset_at + timedelta(minutes=1))
    submit(db_engine, [late, fresh], now=reset_at + timedelta(minutes=2))
    with db_engine.connect() as conn:
        current = reads.top(conn, board, now=reset_at + timedelta(minutes=2))
        past = reads.top(conn, board, period_start=old_start)
        periods = definitions.list_periods(conn, board)
        late_row = conn.execute(
            text(
                "SELECT period_start FROM leaderboard_submissions"
                " WHERE leaderboard_id = :b AND event_id = :e"
            ),
            {"b": board, "e": late.event_id},
        ).one()
    assert [(r.owner_id, r.score) for r in current.records] == [("p3", 5)]
    assert current.period.start == reset_at
    assert [(r.rank, r.owner_id, r.score) for r in past.records] == [(1, "p2", 20), (2, "p1", 10)]
    assert late_row.period_start is None  # seen, not counted
    assert [(p.start, p.archived_at is not None, p.records) for p in periods] == [
        (reset_at, False, 1),
        (old_start, True, 2),
    ]
    assert periods[1].end == reset_at


def test_pruning_forgets_archived_events_without_letting_replays_count(db_engine: Engine) -> None:
    game = new_game()
    board = new_board(db_engine, game, operator=Operator.incr)
    old = [sub(game, "p1", 10, T0), sub(game, "p2", 20, T0)]
    submit(db_engine, old)
    reset_at = T0 + timedelta(hours=1)
    with db_engine.begin() as conn:
        definitions.reset_leaderboard(conn, board, now=reset_at)
    current = [sub(game, "p1", 1, reset_at + timedelta(minutes=1))]
    submit(db_engine, current, now=reset_at + timedelta(minutes=1))
    with db_engine.begin() as conn:
        deleted = writer.prune_submissions(conn)
    submit(db_engine, old + current, now=reset_at + timedelta(minutes=2))  # a full replay
    with db_engine.connect() as conn:
        kept = conn.execute(
            text("SELECT event_id FROM leaderboard_submissions WHERE leaderboard_id = :b"),
            {"b": board},
        ).scalars()
        counted = reads.top(conn, board, now=reset_at + timedelta(minutes=2)).records
        past = reads.top(conn, board, period_start=EPOCH)
    assert deleted >= 2
    assert current[0].event_id in set(kept)
    assert [(r.owner_id, r.score, r.num_score) for r in counted] == [("p1", 1, 1)]
    assert [(r.owner_id, r.score) for r in past.records] == [("p2", 20), ("p1", 10)]


def test_a_scheduled_reset_happens_lazily_and_late_scores_count_within_the_grace(
    db_engine: Engine,
) -> None:
    game = new_game()
    board = new_board(db_engine, game, reset_schedule=WEEKLY)
    week1 = datetime(2026, 11, 16, tzinfo=UTC)
    week2 = datetime(2026, 11, 23, tzinfo=UTC)
    submit(db_engine, [sub(game, "p1", 10, T0)])
    # Monday 00:01: reads already show week 2; a late week-1 score still counts.
    with db_engine.connect() as conn:
        assert reads.top(conn, board, now=week2 + timedelta(minutes=1)).period.start == week2
    submit(
        db_engine,
        [sub(game, "p2", 30, week2 - timedelta(seconds=5)), sub(game, "p3", 7, week2)],
        now=week2 + timedelta(minutes=1),
    )
    # After the grace, the next write archives week 1; later week-1 scores are refused.
    after_grace = week2 + definitions.ARCHIVE_GRACE + timedelta(seconds=1)
    submit(
        db_engine,
        [sub(game, "p4", 99, week2 - timedelta(seconds=1)), sub(game, "p5", 1, after_grace)],
        now=after_grace,
    )
    with db_engine.begin() as conn:
        week1_top = reads.top(conn, board, period_start=week1)
        week2_top = reads.top(conn, board, now=after_grace)
        periods = definitions.list_periods(conn, board)
        again = definitions.reset_leaderboard(conn, board, period_start=week1, now=after_grace)
    assert [r.owner_id for r in week1_top.records] == ["p2", "p1"]
    assert [r.owner_id for r in week2_top.records] == ["p3", "p5"]
    assert [(p.start, p.end, p.archived_at is not None) for p in periods] == [
        (week2, datetime(2026, 11, 30, tzinfo=UTC), False),
        (week1, week2, True),
    ]
    assert again.archived == []


def test_reset_on_demand_catches_up_a_due_scheduled_reset(db_engine: Engine) -> None:
    game = new_game()
    board = new_board(db_engine, game, reset_schedule=WEEKLY)
    submit(db_engine, [sub(game, "p1", 10, T0)])
    monday = datetime(2026, 11, 23, 0, 1, tzinfo=UTC)
    with db_engine.begin() as conn:
        outcome = definitions.reset_leaderboard(conn, board, now=monday)
    with db_engine.begin() as conn:
        repeat = definitions.reset_leaderboard(conn, board, now=monday)
    assert outcome.reason == "scheduled reset"
    assert outcome.archived == [datetime(2026, 11, 16, tzinfo=UTC)]
    assert outcome.current_start == datetime(2026, 11, 23, tzinfo=UTC)
    assert repeat.archived == []


def test_unknown_leaderboards_and_periods_are_named(db_engine: Engine) -> None:
    game = new_game()
    board = new_board(db_engine, game)
    with db_engine.connect() as conn:
        with pytest.raises(errors.UnknownLeaderboard, match="no leaderboard 'nope'"):
            reads.top(conn, "nope")
        with pytest.raises(errors.UnknownPeriod, match="/periods"):
            reads.top(conn, board, period_start=datetime(2020, 1, 1, tzinfo=UTC))
        with pytest.raises(errors.LeaderboardError, match="register the game first"):
            definitions.create_leaderboard(conn, leaderboard_id="x1", game_id="no-such-game")


submission_plans = st.lists(
    st.tuples(
        st.sampled_from(["ann", "bob", "cy", "dee", "eve", "fay"]),
        st.integers(min_value=-50, max_value=50),
        st.integers(min_value=0, max_value=30),
    ),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    plan=submission_plans,
    operator=st.sampled_from(list(Operator)),
    order=st.sampled_from(list(SortOrder)),
    batch_size=st.integers(min_value=1, max_value=15),
    replay_seed=st.integers(min_value=0, max_value=2**16),
)
def test_the_store_agrees_with_the_pure_rules_whatever_the_batching_and_replays(
    db_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    plan: list[tuple[str, int, int]],
    operator: Operator,
    order: SortOrder,
    batch_size: int,
    replay_seed: int,
) -> None:
    monkeypatch.setattr(blocks, "BLOCK_SIZE", 2)
    monkeypatch.setattr(blocks, "BLOCK_SPLIT_AT", 4)
    game = new_game()
    board = new_board(db_engine, game, operator=operator, sort_order=order)
    subs = [sub(game, owner, score, T0 + timedelta(seconds=t)) for owner, score, t in plan]
    rnd = random.Random(replay_seed)
    for start in range(0, len(subs), batch_size):
        batch = subs[start : start + batch_size]
        seen = subs[: start + batch_size]
        replayed = rnd.sample(seen, k=min(3, len(seen)))
        submit(db_engine, batch + replayed)  # replays of earlier and current events

    expected: dict[str, RecordState] = {}
    for s in subs:
        expected[s.owner_id] = apply_submission(
            expected.get(s.owner_id), s.score, s.occurred_at, operator, order
        )
    ranking = sorted(
        expected, key=lambda o: rank_key(order, expected[o].score, expected[o].reached_at, o)
    )
    with db_engine.connect() as conn:
        page = reads.top(conn, board, limit=100, now=T0)
        ranks = {o: reads.rank_of(conn, board, o, now=T0) for o in expected}
    assert [(r.owner_id, r.score, r.num_score) for r in page.records] == [
        (o, expected[o].score, expected[o].num_score) for o in ranking
    ]
    assert all(r.reached_at == expected[r.owner_id].reached_at for r in page.records)
    assert {o: r.rank for o, r in ranks.items() if r} == {o: i + 1 for i, o in enumerate(ranking)}
