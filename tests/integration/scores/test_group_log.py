"""The score log's group commit against the real PostgreSQL: concurrent calls share INSERTs,
each gets its own row, repeats inside one batch are settled like repeats across batches."""

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.platform.errors import Conflict
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


def test_concurrent_calls_share_inserts_and_each_gets_its_own_row(db_engine: Engine) -> None:
    user_id = f"group-{uuid.uuid4().hex[:8]}"
    calls = MAX_BATCH + 300  # more than one batch's worth at once

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
