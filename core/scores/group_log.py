"""Group commit of ``score_log``: concurrent get_score calls share one INSERT, each awaits its row.

One call, one autocommit INSERT through SQLAlchemy in a worker thread cost the API 2.1 ms of
CPU per call (bench/get_score; ``/health``: 0.46 ms): the thread hop, the pool's pre-ping
round trip, the statement's compilation, and one WAL flush per row. Here the calls of one
event loop queue their rows; one flush task sends them all as a single
``INSERT ... SELECT FROM unnest(...) RETURNING`` on one psycopg async connection (no thread,
no pre-ping, one flush for the batch), and hands each caller its own id and timestamp. While
a batch is in flight the next one gathers, so batches grow with the load by themselves.

Every call is still logged before it is answered: a caller's future resolves only after the
INSERT that holds its row returned. What the batch cannot settle alone goes to the
row-at-a-time writer (:func:`core.scores.log.record_score`) in a worker thread: a request id
that is already logged (a retry, or a reuse that it answers 409) and a schema that changed
under the writer (it relearns the columns; see docs/migrations.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import psycopg
from prometheus_client import Histogram
from psycopg import sql
from sqlalchemy.engine import Engine

from core.platform.errors import Unavailable
from core.scores.formula import FORMULA_VERSION
from core.scores.log import INPUT_COLUMNS, ScoreLogEntry, record_score, score_log_columns

MAX_BATCH = 512  # rows per INSERT; beyond it the next batch follows at once
MAX_IN_FLIGHT = 2  # batches (and connections) at once per event loop
CONNECT_TIMEOUT_S = 5

# Where a get_score call waits before it may be answered, split (bench/get_score reads both):
# queued until its batch is sent, then the batch's INSERT (its commit's WAL flush included).
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
QUEUED_SECONDS = Histogram(
    "stride_score_log_queued_seconds",
    "Time the oldest row of a score_log batch waited before its INSERT was sent",
    buckets=_BUCKETS,
)
INSERT_SECONDS = Histogram(
    "stride_score_log_insert_seconds",
    "Round trip of one score_log batch INSERT (commit included), as the API saw it",
    buckets=_BUCKETS,
)

# PostgreSQL array type of each column the writer may fill.
_ARRAY_TYPES = {
    "request_id": "uuid[]",
    "user_id": "text[]",
    "input_value": "float8[]",
    "input": "float8[]",
    "score": "float8[]",
    "formula_version": "int2[]",
}


@dataclass(frozen=True)
class _Pending:
    request_id: uuid.UUID
    user_id: str
    value: float
    score: float
    answer: asyncio.Future[ScoreLogEntry]
    queued_at: float  # time.perf_counter() when the call queued its row


def insert_statement(columns: frozenset[str]) -> tuple[sql.Composed, tuple[str, ...]]:
    """The batch INSERT for the table's current columns, and the logical field each
    ``unnest`` argument carries (``input`` twice during the expand step of the rename)."""
    targets: list[str] = []
    fields: list[str] = []
    for name in ("request_id", "user_id", *INPUT_COLUMNS, "score", "formula_version"):
        if name in columns:
            targets.append(name)
            fields.append("input" if name in INPUT_COLUMNS else name)
    statement = sql.SQL(
        "INSERT INTO score_log ({targets}) SELECT * FROM unnest({arrays}) "
        "ON CONFLICT DO NOTHING RETURNING id, request_id, created_at"
    ).format(
        targets=sql.SQL(", ").join(sql.Identifier(t) for t in targets),
        arrays=sql.SQL(", ").join(
            sql.SQL("%s::{}").format(sql.SQL(_ARRAY_TYPES[t])) for t in targets
        ),
    )
    return statement, tuple(fields)


def batch_parameters(batch: list[_Pending], fields: tuple[str, ...]) -> list[list[object]]:
    """One array per ``unnest`` argument, rows in batch order."""
    columns: dict[str, list[object]] = {
        "request_id": [p.request_id for p in batch],
        "user_id": [p.user_id for p in batch],
        "input": [p.value for p in batch],
        "score": [p.score for p in batch],
        "formula_version": [FORMULA_VERSION] * len(batch),
    }
    return [columns[f] for f in fields]


class ScoreLogBatcher:
    """The group-commit writer of one engine's database on one event loop: up to
    ``MAX_IN_FLIGHT`` batches at once, each on a connection of its own."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._pending: list[_Pending] = []
        self._flushers: set[asyncio.Task[None]] = set()
        # Counted by hand, not by len(self._flushers): a flusher that found nothing left
        # stays in that set until its done-callback runs, after the callers it answered
        # have already queued new rows; counting it would leave those rows unflushed.
        self._active = 0
        self._retries: set[asyncio.Task[None]] = set()
        self._idle: list[psycopg.AsyncConnection] = []
        self.batches = 0  # INSERTs that returned, for tests and the docs' figures
        self.rows = 0

    async def record(
        self, *, request_id: uuid.UUID, user_id: str, value: float, score: float
    ) -> ScoreLogEntry:
        """Log one call with the next batch and return its row as stored."""
        answer: asyncio.Future[ScoreLogEntry] = asyncio.get_running_loop().create_future()
        queued = _Pending(request_id, user_id, value, score, answer, time.perf_counter())
        self._pending.append(queued)
        if self._active < MAX_IN_FLIGHT:
            self._active += 1
            self._spawn(self._flushers, self._flush())
        return await answer

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    def _spawn(self, tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _flush(self) -> None:
        """Write batches until nothing is pending, on one connection."""
        conn: psycopg.AsyncConnection | None = None
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    if conn is None:
                        conn = await self._checkout()
                    await self._write(conn, batch)
                except BaseException as exc:  # every caller hears of the failure, none hangs
                    if isinstance(exc, Unavailable):
                        conn = None  # _write closed it
                    for p in batch:
                        if not p.answer.done():
                            p.answer.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
        finally:
            self._active -= 1  # no await since the last look at _pending
            if conn is not None and not conn.closed:
                self._idle.append(conn)

    async def _checkout(self) -> psycopg.AsyncConnection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        try:
            return await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
        except psycopg.OperationalError as exc:
            raise _unavailable() from exc

    async def _write(self, conn: psycopg.AsyncConnection, batch: list[_Pending]) -> None:
        columns = score_log_columns.cached(self._engine)
        if columns is None:  # first batch: learn the schema (a blocking inspection)
            columns = await asyncio.to_thread(score_log_columns.get, self._engine)
        statement, fields = insert_statement(columns)
        sent = time.perf_counter()
        QUEUED_SECONDS.observe(sent - batch[0].queued_at)
        try:
            async with conn.cursor() as cur:
                await cur.execute(statement, batch_parameters(batch, fields))
                stored = {row[1]: (row[0], row[2]) for row in await cur.fetchall()}
            INSERT_SECONDS.observe(time.perf_counter() - sent)
        except psycopg.OperationalError as exc:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
            raise _unavailable() from exc
        except psycopg.ProgrammingError:
            # A column we knew about was migrated away: the row-at-a-time writer relearns it.
            score_log_columns.forget(self._engine)
            stored = {}
        self.batches += 1
        self.rows += len(stored)
        for p in batch:
            found = stored.pop(p.request_id, None)
            if found is None:
                self._spawn(self._retries, self._one_by_one(p))
            elif not p.answer.done():
                log_id, created_at = found
                p.answer.set_result(
                    ScoreLogEntry(log_id, p.request_id, p.user_id, p.value, p.score, created_at)
                )

    async def _one_by_one(self, p: _Pending) -> None:
        """A row the batch did not insert: a retry, a reused request id (409) or a schema
        change, settled by the writer that handles each."""
        try:
            entry = await asyncio.to_thread(
                record_score,
                self._engine,
                request_id=p.request_id,
                user_id=p.user_id,
                value=p.value,
                score=p.score,
            )
        except Exception as exc:
            if not p.answer.done():
                p.answer.set_exception(exc)
        else:
            if not p.answer.done():
                p.answer.set_result(entry)


def _unavailable() -> Unavailable:
    return Unavailable(
        "the database is unavailable, so the call cannot be logged; nothing was changed. "
        "Retry after a few seconds."
    )


# One writer per event loop (a connection belongs to the loop it was opened on) and engine.
_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Engine, ScoreLogBatcher]] = (
    weakref.WeakKeyDictionary()
)


def batcher_for(engine: Engine) -> ScoreLogBatcher:
    """The running loop's group-commit writer for ``engine``."""
    per_engine = _batchers.setdefault(asyncio.get_running_loop(), {})
    batcher = per_engine.get(engine)
    if batcher is None:
        batcher = per_engine[engine] = ScoreLogBatcher(engine)
    return batcher


async def record_score_grouped(
    engine: Engine, *, request_id: uuid.UUID, user_id: str, value: float, score: float
) -> ScoreLogEntry:
    """:func:`core.scores.log.record_score`, committed together with the concurrent calls."""
    return await batcher_for(engine).record(
        request_id=request_id, user_id=user_id, value=value, score=score
    )


async def close_batchers() -> None:
    """Close the running loop's writers' connections (the API's shutdown)."""
    for batcher in _batchers.pop(asyncio.get_running_loop(), {}).values():
        await batcher.close()
