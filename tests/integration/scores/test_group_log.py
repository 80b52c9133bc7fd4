"""The score log's group commit against the real PostgreSQL: concurrent calls share INSERTs,
each gets its own row, repeats inside one batch are settled like repeats across batches."""

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.platform.errors import Conflict
from core.scores import group_log
from core.scores.group_log import MAX_BATCH, ScoreLogBatcher, insert_statement
from core.scores.log import read_score


def rows_of(engine: Engine, user_id: str) -> list[tuple[int, float]]:
    with engine.connect() as conn:
        return [
            (r[0], r[1])
            for r in conn.execute(
                text("SELECT id, input_value FROM score_log WHERE user_id = :u ORDER BY id"),
                {"u": user_id},
            )
        ]


def histogram_count(histogram: object) -> float:
    """Observations so far of a prometheus_client Histogram without labels."""
    for metric in histogram.collect():  # type: ignore[attr-defined]
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                return float(sample.value)
    raise AssertionError("no _count sample")


def test_concurrent_calls_share_inserts_and_each_gets_its_own_row(db_engine: Engine) -> None:
    user_id = f"group-{uuid.uuid4().hex[:8]}"
    calls = MAX_BATCH + 300  # more than one batch's worth at once
    queued_before = histogram_count(group_log.QUEUED_SECONDS)
    inserts_before = histogram_count(group_log.INSERT_SECONDS)

    async def scenario() -> tuple[list, ScoreLogBatcher]:
        batcher = ScoreLogBatcher(db_engine)
        try:
            entries = await asyncio.gather(
                *(
                    batcher.record(
                        request_id=uuid.uuid4(), user_id=user_id, value=float(i), score=i * 2.0
                    )
                    for i in range(calls)
                )
            )
        finally:
            await batcher.close()
        return entries, batcher

    entries, batcher = asyncio.run(scenario())
    assert [e.input for e in entries] == [float(i) for i in range(calls)]
    assert len({e.log_id for e in entries}) == calls
    assert batcher.rows == calls and batcher.batches < calls / 10  # grouped, not one by one
    # Each batch's queue wait and INSERT round trip are timed (bench/get_score reads them).
    assert histogram_count(group_log.QUEUED_SECONDS) - queued_before == batcher.batches
    assert histogram_count(group_log.INSERT_SECONDS) - inserts_before == batcher.batches
    stored = dict(rows_of(db_engine, user_id))
    assert {e.log_id: e.input for e in entries} == stored  # each answer is its own row
    one = read_score(db_engine, entries[7].log_id)
    assert one is not None and (one.request_id, one.score) == (entries[7].request_id, 14.0)


def test_a_repeated_request_id_in_one_batch_is_a_retry_or_a_conflict(db_engine: Engine) -> None:
    user_id = f"group-rid-{uuid.uuid4().hex[:8]}"
    rid, reused = uuid.uuid4(), uuid.uuid4()

    async def scenario() -> list:
        batcher = ScoreLogBatcher(db_engine)
        try:
            return await asyncio.gather(
                batcher.record(request_id=rid, user_id=user_id, value=1.0, score=1.0),
                batcher.record(request_id=rid, user_id=user_id, value=1.0, score=1.0),
                batcher.record(request_id=reused, user_id=user_id, value=2.0, score=2.0),
                batcher.record(request_id=reused, user_id=user_id, value=3.0, score=3.0),
                return_exceptions=True,
            )
        finally:
            await batcher.close()

    first, retry, kept, refused = asyncio.run(scenario())
    assert retry == first  # the same call twice: one row, the same answer
    assert kept.input == 2.0
    assert isinstance(refused, Conflict) and str(reused) in str(refused)
    assert [v for _, v in rows_of(db_engine, user_id)] == [1.0, 2.0]


@pytest.mark.parametrize(
    ("columns", "fields"),
    [
        (
            {"id", "request_id", "user_id", "input", "score"},
            ("request_id", "user_id", "input", "score"),
        ),
        (  # the expand step of the rename: both input columns get the value
            {"request_id", "user_id", "input", "input_value", "score", "formula_version"},
            ("request_id", "user_id", "input", "input", "score", "formula_version"),
        ),
    ],
)
def test_the_insert_follows_the_table_s_columns(columns: set[str], fields: tuple) -> None:
    _statement, got = insert_statement(frozenset(columns))
    assert got == fields


@pytest.mark.parametrize("in_flight", [1, group_log.MAX_IN_FLIGHT])
def test_callers_that_call_again_at_once_are_never_left_waiting(
    db_engine: Engine, in_flight: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closed-loop callers (each sends its next call as soon as it is answered, as a load
    generator does) queue rows while the flusher that answered them is finishing: those
    rows must get a flusher too, or the callers wait forever."""
    monkeypatch.setattr(group_log, "MAX_IN_FLIGHT", in_flight)
    user_id = f"group-loop-{uuid.uuid4().hex[:8]}"
    clients, rounds = 8, 40

    async def client(batcher: ScoreLogBatcher, n: int) -> int:
        for i in range(rounds):
            await batcher.record(
                request_id=uuid.uuid4(), user_id=user_id, value=float(n * rounds + i), score=0.0
            )
        return rounds

    async def scenario() -> int:
        batcher = ScoreLogBatcher(db_engine)
        try:
            # A bound only so that the bug fails the test instead of hanging the suite.
            done = await asyncio.wait_for(
                asyncio.gather(*(client(batcher, n) for n in range(clients))), timeout=120
            )
        finally:
            await batcher.close()
        return sum(done)

    assert asyncio.run(scenario()) == clients * rounds
    assert len(rows_of(db_engine, user_id)) == clients * rounds
