"""Writing and reading ``score_log``, tolerant of every schema revision of the table.

The writer looks at the columns the live table has (cached, refreshed when a statement
hits a column that was migrated away) so the same code runs before, during and after an
expand/contract migration: during the rename ``input`` -> ``input_value`` it writes both
columns and reads whichever is filled. See docs/migrations.md.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import column, func, inspect, select, table
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, ProgrammingError

from core.platform.errors import Conflict
from core.scores.formula import FORMULA_VERSION

# Each logical field and the physical columns that have held it, newest first.
INPUT_COLUMNS = ("input_value", "input")


@dataclass(frozen=True)
class ScoreLogEntry:
    log_id: int
    request_id: uuid.UUID
    user_id: str
    input: float
    score: float
    computed_at: datetime


class _ColumnCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._columns: dict[int, frozenset[str]] = {}

    def get(self, engine: Engine) -> frozenset[str]:
        key = id(engine)
        cols = self._columns.get(key)
        if cols is None:
            with self._lock:
                cols = frozenset(c["name"] for c in inspect(engine).get_columns("score_log"))
                self._columns[key] = cols
        return cols

    def cached(self, engine: Engine) -> frozenset[str] | None:
        """The columns if known, without inspecting the database."""
        return self._columns.get(id(engine))

    def forget(self, engine: Engine | None = None) -> None:
        with self._lock:
            if engine is None:
                self._columns.clear()
            else:
                self._columns.pop(id(engine), None)


score_log_columns = _ColumnCache()


def _insert(conn: Connection, cols: frozenset[str], values: dict[str, object]):
    row = {k: v for k, v in values.items() if k in cols}
    for name in INPUT_COLUMNS:
        if name in cols:
            row[name] = values["input"]
    target = table("score_log", *(column(k) for k in row), column("id"), column("created_at"))
    stmt = target.insert().values(row).returning(target.c.id, target.c.created_at)
    return conn.execute(stmt).one()


def record_score(
    engine: Engine, *, request_id: uuid.UUID, user_id: str, value: float, score: float
) -> ScoreLogEntry:
    """Insert one score_log row in its own transaction and return it as stored."""
    values: dict[str, object] = {
        "request_id": request_id,
        "user_id": user_id,
        "input": value,
        "score": score,
        "formula_version": FORMULA_VERSION,
    }
    for attempt in (1, 2):
        cols = score_log_columns.get(engine)
        try:
            # One INSERT is atomic on its own: autocommit saves the BEGIN and COMMIT round trips.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                log_id, created_at = _insert(conn, cols, values)
            break
        except IntegrityError:
            # request_id is unique: the same call retried answers what it answered, another
            # call with a reused id is refused.
            earlier = _read(engine, "request_id", request_id)
            if earlier is not None and (earlier.user_id, earlier.input) == (user_id, value):
                return earlier
            raise Conflict(
                f"request id {request_id} was already used by another get_score call; "
                "send a new one (or none) for a new call"
            ) from None
        except ProgrammingError:
            # A column we knew about was migrated away: relearn the schema once.
            score_log_columns.forget(engine)
            if attempt == 2:
                raise
    return ScoreLogEntry(log_id, request_id, user_id, value, score, created_at)


def read_score(engine: Engine, log_id: int) -> ScoreLogEntry | None:
    """Read one logged score back, whichever input column the schema has."""
    return _read(engine, "id", log_id)


def _read(engine: Engine, key: str, value: object) -> ScoreLogEntry | None:
    cols = score_log_columns.get(engine)
    present = [c for c in INPUT_COLUMNS if c in cols]
    t = table(
        "score_log",
        column("id"),
        column("request_id"),
        column("user_id"),
        column("score"),
        column("created_at"),
        *(column(c) for c in present),
    )
    input_expr = func.coalesce(*(t.c[c] for c in present)) if len(present) > 1 else t.c[present[0]]
    stmt = select(t.c.id, t.c.request_id, t.c.user_id, input_expr, t.c.score, t.c.created_at).where(
        t.c[key] == value
    )
    with engine.connect() as conn:
        row = conn.execute(stmt).one_or_none()
    return ScoreLogEntry(*row) if row else None
