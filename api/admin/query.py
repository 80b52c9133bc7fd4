"""The read-only SQL page of the admin panel (``/admin/query``) for operations staff.

Defence in depth: a statement check gives a clear message for anything but one SELECT; the
statement then runs as the read-only PostgreSQL role, inside a ``READ ONLY`` transaction with
a local ``statement_timeout``, through a server-side cursor (``DECLARE`` accepts a single
query only) from which at most ``query_row_limit`` rows and ``query_byte_limit`` bytes of
cell text are fetched. PostgreSQL cuts any value longer than ``CELL_BYTE_LIMIT`` to a preview
before sending it, and rows are fetched in batches no bigger than the byte limit, so a
result never costs the API much more memory than that limit, however wide its rows.

Each query runs on a connection of its own, closed after it (no pool): whatever a query did
to its session (an advisory lock, a setting, a prepared statement) ends with the request.
The check also refuses advisory locks outright, so a query cannot even hold one while it runs.

The page's CSV holds the rows the page shows, and ends with a line saying so when the query
had more; "Download the full result" streams the whole result (same role, same checks, same
timeout on every FETCH) up to ``query_export_row_limit`` rows, a batch at a time.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from typing import Any, Literal

import anyio
import psycopg
from psycopg import errors as pg_errors
from pydantic import BaseModel, Field, ValidationError
from sqladmin import BaseView, expose
from sqlalchemy import create_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from core.platform.config import get_settings
from core.platform.migrate import READONLY_HIDDEN_TABLES

logger = logging.getLogger("stride.admin.query")

READ_ONLY_MESSAGE = "This page is read-only: INSERT/UPDATE/DELETE/DDL are not allowed."
MAX_SQL_LENGTH = 20_000
QUERY_FIRST_WORDS = frozenset({"SELECT", "WITH", "VALUES", "TABLE"})
# Data-modifying or row-locking words, refused wherever they appear (a WITH can hide a DELETE).
WRITE_WORDS_ANYWHERE = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE"})
# Statements that write, change the session or the schema, refused as the first word.
WRITE_FIRST_WORDS = WRITE_WORDS_ANYWHERE | frozenset(
    {"CREATE", "ALTER", "DROP", "TRUNCATE", "GRANT", "REVOKE", "COPY", "COMMENT", "LOCK"}
    | {"VACUUM", "ANALYZE", "CLUSTER", "REINDEX", "REFRESH", "CALL", "DO", "SET", "RESET"}
    | {"BEGIN", "START", "COMMIT", "ROLLBACK", "END", "ABORT", "DISCARD", "SAVEPOINT"}
    | {"RELEASE", "PREPARE", "EXECUTE", "DEALLOCATE", "IMPORT", "SECURITY", "REASSIGN"}
)
# What the read-only role may read: information_schema lists only columns it has rights on.
READABLE_COLUMNS_QUERY = (
    "SELECT table_name, string_agg(column_name, ', ' ORDER BY ordinal_position)"
    " FROM information_schema.columns WHERE table_schema = 'public'"
    " GROUP BY table_name ORDER BY table_name"
)
# Functions that take a lock (session or transaction level): nothing a read-only page needs.
LOCK_FUNCTIONS = frozenset(
    f"pg{try_}_advisory{xact}_lock{shared}"
    for try_ in ("", "_try")
    for xact in ("", "_xact")
    for shared in ("", "_shared")
)
LOCK_MESSAGE = (
    "Locks cannot be taken from this page (pg_advisory_lock and the like): it only reads."
)
# Functions that change a setting: the page's own limits (its statement timeout) are settings.
SETTING_FUNCTIONS = frozenset({"set_config"})
SETTING_MESSAGE = (
    "Settings cannot be changed from this page (set_config): it only reads, within its limits."
)
_DOLLAR_QUOTE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A value longer than this (as text) arrives as a preview of its first characters.
CELL_BYTE_LIMIT = 100_000
CELL_PREVIEW_CHARS = 1000
FETCH_ROWS = 100  # rows per FETCH at most, fewer for wide rows
IDLE_IN_TRANSACTION_MS = 60_000  # a download nobody reads stops holding its snapshot


class QueryRejectedError(ValueError):
    """The text typed is not a single read-only query; the message says why."""


@dataclass(frozen=True)
class _Scan:
    statements: list[str]  # top-level statements (text between semicolons) that hold code
    words: list[list[str]]  # upper-cased bare words of each statement, outside strings/comments
    quoted: list[list[str]]  # the names written as quoted identifiers ("name") in each one


def _is_ident_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_$"


def _scan(sql: str) -> _Scan:
    """Split SQL at top-level semicolons, skipping comments, strings and quoted identifiers."""
    statements: list[str] = []
    words: list[list[str]] = []
    quoted: list[list[str]] = []
    current_words: list[str] = []
    current_quoted: list[str] = []
    start = i = 0
    n = len(sql)

    def close_statement(end: int) -> None:
        nonlocal current_words, current_quoted
        if current_words:
            statements.append(sql[start:end].strip())
            words.append(current_words)
            quoted.append(current_quoted)
        current_words, current_quoted = [], []

    while i < n:
        ch = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        if ch == "-" and nxt == "-":
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch == "/" and nxt == "*":
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif ch == "'":
            escapes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _is_ident_char(sql[i - 2]))
            i += 1
            while i < n:
                doubled_quote = sql[i] == "'" and i + 1 < n and sql[i + 1] == "'"
                if doubled_quote or (escapes and sql[i] == "\\"):
                    i += 2
                elif sql[i] == "'":
                    break
                else:
                    i += 1
            i += 1
            current_words.append("'")  # a literal is code too ("SELECT 'x'" is one statement)
        elif ch == '"':
            end = i + 1
            while True:
                end = sql.find('"', end)
                if end < 0 or not sql.startswith('""', end):
                    break
                end += 2
            current_quoted.append(sql[i + 1 : n if end < 0 else end].replace('""', '"'))
            i = n if end < 0 else end + 1
            current_words.append('"')
        elif (
            ch == "$"
            and (i == 0 or not _is_ident_char(sql[i - 1]))
            and (match := _DOLLAR_QUOTE.match(sql, i))
        ):
            end = sql.find(match.group(0), match.end())
            i = n if end < 0 else end + len(match.group(0))
            current_words.append("$")
        elif ch == ";":
            close_statement(i)
            start = i = i + 1
        elif _is_ident_char(ch):
            end = i
            while end < n and _is_ident_char(sql[end]):
                end += 1
            current_words.append(sql[i:end].upper())
            i = end
        else:
            if not ch.isspace():
                current_words.append(ch)
            i += 1
    close_statement(n)
    return _Scan(statements, words, quoted)


def check_read_only_statement(sql: str) -> str:
    """The single read-only query in ``sql``, or QueryRejectedError with what to do instead."""
    if len(sql) > MAX_SQL_LENGTH:
        raise QueryRejectedError(f"The query is too long (at most {MAX_SQL_LENGTH} characters).")
    scan = _scan(sql)
    if not scan.statements:
        raise QueryRejectedError("Type a SELECT query first.")
    if len(scan.statements) > 1:
        raise QueryRejectedError(
            "One statement at a time: remove everything after the first ';' and run it again."
        )
    words = [w for w in scan.words[0] if w[0].isalpha() or w[0] == "_"]
    first = words[0] if words else ""
    if first in WRITE_FIRST_WORDS or any(w in WRITE_WORDS_ANYWHERE for w in words):
        raise QueryRejectedError(READ_ONLY_MESSAGE)
    if any(name.lower() in LOCK_FUNCTIONS for name in words) or any(
        name in LOCK_FUNCTIONS for name in scan.quoted[0]
    ):
        raise QueryRejectedError(LOCK_MESSAGE)
    if any(name.lower() in SETTING_FUNCTIONS for name in words) or any(
        name in SETTING_FUNCTIONS for name in scan.quoted[0]
    ):
        raise QueryRejectedError(SETTING_MESSAGE)
    if first not in QUERY_FIRST_WORDS:
        raise QueryRejectedError(
            f"Only queries can run here (SELECT, WITH … SELECT, VALUES or TABLE), not {first!r}."
            if first
            else "Only queries can run here (SELECT, WITH … SELECT, VALUES or TABLE)."
        )
    return scan.statements[0]


def cell_text(value: Any) -> str | None:
    """How a value shows in the result table and the CSV (None stays None: SQL NULL)."""
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    return str(value)


def csv_safe(text_value: str | None) -> str:
    """A CSV cell that spreadsheets will not run as a formula (OWASP CSV injection)."""
    if text_value is None:
        return ""
    if text_value.startswith(_FORMULA_START) and not _is_number(text_value):
        return "'" + text_value
    return text_value


def _is_number(text_value: str) -> bool:
    try:
        float(text_value)
    except ValueError:
        return False
    return True


def render_csv(
    columns: Sequence[str] | None, rows: Sequence[Sequence[str | None]], note: str | None = None
) -> str:
    """CSV lines of ``columns`` (a header; None for none) and ``rows``, then ``note`` as a
    last line of its own when the rows are not the whole result (it says why)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if columns is not None:
        writer.writerow([csv_safe(c) for c in columns])
    writer.writerows([csv_safe(v) for v in row] for row in rows)
    if note:
        writer.writerow([note])
    return out.getvalue()


def page_csv_note(result: QueryResult, export_row_limit: int) -> str | None:
    """The last line of the page's CSV when it holds only the rows the page shows."""
    if result.cut_by == "rows":
        return (
            f"# Stopped at the page's limit of {result.row_limit:,} rows: the query has more."
            f" 'Download the full result' gives up to {export_row_limit:,} rows."
        )
    if result.cut_by == "bytes":
        return (
            f"# Stopped after {len(result.rows):,} rows at the page's limit of"
            f" {result.byte_limit / 1_000_000:g} MB: the query has more."
            f" 'Download the full result' gives up to {export_row_limit:,} rows."
        )
    return None


def export_limit_note(row_limit: int) -> str:
    return (
        f"# Stopped at the export limit of {row_limit:,} rows: the query has more."
        " Narrow it down with a WHERE, or ask an engineer for a bigger extract."
    )


def capped_query(statement: str, width: int) -> str:
    """``statement`` with each of its ``width`` values cut by PostgreSQL when longer than
    ``CELL_BYTE_LIMIT``: the value (NULL when cut), then an array of previews of the cut
    values and one of their full lengths. Columns are renamed by position, so duplicate
    names (two ``?column?``) do not matter; the order of the statement's rows is kept."""
    names = [f"c{i}" for i in range(width)]

    def too_long(name: str) -> str:
        return f"octet_length({name}::text) > {CELL_BYTE_LIMIT}"

    values = [f"CASE WHEN {too_long(c)} THEN NULL ELSE {c} END" for c in names]
    previews = [
        f"CASE WHEN {too_long(c)} THEN left({c}::text, {CELL_PREVIEW_CHARS}) END" for c in names
    ]
    sizes = [f"CASE WHEN {too_long(c)} THEN octet_length({c}::text) END" for c in names]
    # The statement is the checked query itself, run as the read-only role: that is the point.
    return (
        f"SELECT {', '.join(values)}, ARRAY[{', '.join(previews)}]::text[],"  # noqa: S608
        f" ARRAY[{', '.join(sizes)}]::bigint[]"
        f" FROM (\n{statement}\n) AS stride_query({', '.join(names)})"
    )


def capped_cells(row: Sequence[Any], width: int) -> tuple[list[str | None], int]:
    """The cells of one row of ``capped_query``, and how many of them were cut."""
    previews, sizes = row[width], row[width + 1]
    cells = [
        cell_text(value) if preview is None else f"{preview}… [cut: {size:,} bytes]"
        for value, preview, size in zip(row[:width], previews, sizes, strict=True)
    ]
    return cells, sum(p is not None for p in previews)


def fetch_batch(width: int, byte_limit: int) -> int:
    """Rows per FETCH such that even a batch of the widest possible rows fits the limit."""
    return max(1, min(FETCH_ROWS, byte_limit // (max(1, width) * CELL_BYTE_LIMIT)))


@dataclass
class ResultBudget:
    """The rows of a result while they fit: ``row_limit`` rows, ``byte_limit`` bytes of text."""

    row_limit: int
    byte_limit: int
    rows: list[list[str | None]] = field(default_factory=list)
    used_bytes: int = 0
    cut_by: Literal["rows", "bytes"] | None = None

    def take(self, row: list[str | None]) -> bool:
        """Keep ``row`` if it fits; False, with the reason in ``cut_by``, once it does not."""
        if len(self.rows) >= self.row_limit:
            self.cut_by = "rows"
            return False
        size = sum(len(cell.encode()) for cell in row if cell is not None)
        if self.used_bytes + size > self.byte_limit:
            self.cut_by = "bytes"
            return False
        self.rows.append(row)
        self.used_bytes += size
        return True


def friendly_error(error: psycopg.Error, timeout_ms: int) -> str:
    """What a non-engineer should read instead of a stack trace."""
    detail = (error.diag.message_primary if error.diag else None) or str(error).strip()
    if isinstance(error, TimeLimitReached) and error.total_s * 1000 != timeout_ms:
        return (
            f"This ran longer than {error.total_s:g} s in all and was stopped. "
            "Narrow it down (a WHERE on an indexed column, a LIMIT) or ask an engineer."
        )
    if isinstance(error, pg_errors.QueryCanceled):
        return (
            f"The query ran longer than {timeout_ms / 1000:g} s and was stopped. "
            "Narrow it down (a WHERE on an indexed column, a LIMIT) or ask an engineer."
        )
    if isinstance(error, pg_errors.ReadOnlySqlTransaction):
        return READ_ONLY_MESSAGE
    if isinstance(error, pg_errors.InsufficientPrivilege):
        hidden = ", ".join(READONLY_HIDDEN_TABLES)
        return f"Not allowed: {detail}. The table(s) {hidden} cannot be read from this page."
    if isinstance(error, psycopg.OperationalError):
        return f"The read-only database connection is not available: {detail}"
    hint = error.diag.message_hint if error.diag else None
    return f"SQL error: {detail}" + (f" (hint: {hint})" if hint else "")


@cache
def _query_engine(url: str) -> Engine:
    """The query page's engine: no pool, each query gets a fresh connection closed after it."""
    return create_engine(url, poolclass=NullPool)


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[list[str | None]]
    cut_by: Literal["rows", "bytes"] | None  # why rows were left out, if they were
    cut_cells: int  # values shown as a preview
    row_limit: int
    byte_limit: int
    elapsed_ms: float

    @property
    def truncated(self) -> bool:
        return self.cut_by is not None


class TimeLimitReached(pg_errors.QueryCanceled):
    """The request's time in all is up (raised by :class:`Deadline`, not by PostgreSQL)."""

    def __init__(self, total_s: float) -> None:
        super().__init__(f"the time limit of {total_s:g} s in all was reached")
        self.total_s = total_s


class Deadline:
    """A query's limit in all, enforced on every statement it sends.

    The statement timeout is set again before each FETCH, to what is left of the request's
    time (never more than ``statement_ms``): a query that changed the setting from inside
    (``set_config`` is refused by the check, but a function such as ``query_to_xml`` runs
    SQL the check never sees) cannot run its next FETCH unbounded, and a result read in
    many batches stops when the request's time is up, not after a timeout per batch."""

    def __init__(self, dbapi: psycopg.Connection[Any], total_s: float, statement_ms: int) -> None:
        self.dbapi, self.statement_ms, self.total_s = dbapi, statement_ms, total_s
        self.ends = time.monotonic() + total_s

    def arm(self) -> bool:
        """Before a statement: the timeout it runs under; TimeLimitReached once time is up.
        True when that timeout is what is left of the request's time, not the page's own."""
        left_ms = int((self.ends - time.monotonic()) * 1000)
        if left_ms <= 0:
            raise TimeLimitReached(self.total_s)
        self.dbapi.execute(
            "SELECT set_config('statement_timeout', %s, true),"
            " set_config('idle_in_transaction_session_timeout', %s, true)",
            [f"{min(left_ms, self.statement_ms)}ms", f"{IDLE_IN_TRANSACTION_MS}ms"],
        )
        return left_ms < self.statement_ms

    @contextlib.contextmanager
    def statement(self) -> Iterator[None]:
        """Arm, run the caller's statement; a cancel by what was left is TimeLimitReached."""
        by_total = self.arm()
        try:
            yield
        except pg_errors.QueryCanceled as error:
            if by_total and not isinstance(error, TimeLimitReached):
                raise TimeLimitReached(self.total_s) from error
            raise

    def fetch(self, cursor: psycopg.ServerCursor[Any], rows: int) -> list[Any]:
        with self.statement():
            return cursor.fetchmany(rows)


def _fetch_capped(
    cursor: psycopg.ServerCursor[Any], width: int, budget: ResultBudget, deadline: Deadline
) -> int:
    """Fill ``budget`` from ``cursor`` (a ``capped_query``); returns the cut values."""
    cut_cells = 0
    while batch := deadline.fetch(cursor, fetch_batch(width, budget.byte_limit)):
        for row in batch:
            cells, cut = capped_cells(row, width) if width else ([], 0)
            if not budget.take(cells):
                return cut_cells
            cut_cells += cut
    return cut_cells


def run_read_only_query(
    statement: str, *, url: str, timeout_ms: int, row_limit: int, byte_limit: int
) -> QueryResult:
    """Run one checked query as the read-only role; raises psycopg.Error on database errors."""
    started = time.perf_counter()
    budget = ResultBudget(row_limit, byte_limit)
    try:
        with _query_engine(url).connect() as conn:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            dbapi = conn.connection.dbapi_connection
            assert isinstance(dbapi, psycopg.Connection)
            deadline = Deadline(dbapi, timeout_ms / 1000, timeout_ms)  # the whole page
            with dbapi.cursor(name="stride_admin_query") as cursor, deadline.statement():
                cursor.execute(statement)  # DECLARE: planned and described, nothing fetched
                columns = [d.name for d in cursor.description or ()]
            with dbapi.cursor(name="stride_admin_result") as cursor:
                with deadline.statement():
                    cursor.execute(capped_query(statement, len(columns)) if columns else statement)
                cut_cells = _fetch_capped(cursor, len(columns), budget, deadline)
            conn.rollback()
    except sa_exc.DBAPIError as error:
        if isinstance(error.orig, psycopg.Error):
            raise error.orig from error
        raise
    return QueryResult(
        columns=columns,
        rows=budget.rows,
        cut_by=budget.cut_by,
        cut_cells=cut_cells,
        row_limit=row_limit,
        byte_limit=byte_limit,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


def _open_read_only(url: str) -> tuple[Connection, psycopg.Connection[Any]]:
    conn = _query_engine(url).connect()
    try:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    except BaseException:
        conn.close()
        raise
    dbapi = conn.connection.dbapi_connection
    assert isinstance(dbapi, psycopg.Connection)
    return conn, dbapi


def stream_read_only_csv(
    statement: str,
    *,
    url: str,
    timeout_ms: int,
    row_limit: int,
    batch_bytes: int,
    total_s: float,
) -> Iterator[str]:
    """The whole result of one checked query as CSV text, up to ``row_limit`` rows, read as
    the read-only role through a server-side cursor a batch at a time (a batch holds at most
    ``batch_bytes`` of values, each value cut as on the page), so memory stays flat however
    many rows it sends. Every FETCH runs under the statement timeout, and the whole download
    stops after ``total_s`` seconds (:class:`Deadline`).

    The query is declared and its first batch fetched before this returns, so a query that
    fails to start raises psycopg.Error here (an error page, not a broken download); a
    failure later ends the file with a last line saying why, as does the row limit."""
    try:
        conn, dbapi = _open_read_only(url)
    except sa_exc.DBAPIError as error:
        if isinstance(error.orig, psycopg.Error):
            raise error.orig from error
        raise
    try:
        deadline = Deadline(dbapi, total_s, timeout_ms)
        with dbapi.cursor(name="stride_admin_query") as described, deadline.statement():
            described.execute(statement)  # DECLARE: planned and described, nothing fetched
            columns = [d.name for d in described.description or ()]
        width = len(columns)
        cursor = dbapi.cursor(name="stride_admin_export")
        with deadline.statement():
            cursor.execute(capped_query(statement, width) if width else statement)
        batch_rows = fetch_batch(width, batch_bytes)
        first = deadline.fetch(cursor, batch_rows)
    except BaseException:
        conn.close()
        raise
    return _csv_chunks(conn, cursor, columns, first, row_limit, batch_rows, timeout_ms, deadline)


def _csv_chunks(
    conn: Connection,
    cursor: psycopg.ServerCursor[Any],
    columns: list[str],
    batch: list[Any],
    row_limit: int,
    batch_rows: int,
    timeout_ms: int,
    deadline: Deadline,
) -> Iterator[str]:
    width = len(columns)
    sent = 0
    try:
        yield render_csv(columns, [])
        while batch:
            rows: list[list[str | None]] = []
            for row in batch:
                if sent == row_limit:
                    yield render_csv(None, rows, export_limit_note(row_limit))
                    return
                rows.append(capped_cells(row, width)[0] if width else [])
                sent += 1
            yield render_csv(None, rows)
            batch = deadline.fetch(cursor, batch_rows)
    except psycopg.Error as error:
        logger.info("admin query export stopped after %d rows: %s", sent, type(error).__name__)
        yield render_csv(
            None, [], f"# Stopped after {sent:,} rows: {friendly_error(error, timeout_ms)}"
        )
    finally:
        with contextlib.suppress(psycopg.Error):  # the connection is closed next either way
            cursor.close()
        conn.close()


class QueryForm(BaseModel):
    sql: str = Field(default="", max_length=MAX_SQL_LENGTH)


@dataclass
class _Outcome:
    sql: str
    result: QueryResult | None = None
    error: str | None = None


async def _checked_from_form(request: Request) -> tuple[str, str] | _Outcome:
    """(the text typed, the checked statement) of the form, or the outcome refusing it."""
    form = await request.form()
    try:
        query = QueryForm(sql=str(form.get("sql") or ""))
    except ValidationError:
        return _Outcome(sql="", error=f"The query is too long (at most {MAX_SQL_LENGTH} chars).")
    try:
        return query.sql, check_read_only_statement(query.sql)
    except QueryRejectedError as rejected:
        return _Outcome(sql=query.sql, error=str(rejected))


async def _run_from_form(request: Request) -> _Outcome:
    checked = await _checked_from_form(request)
    if isinstance(checked, _Outcome):
        return checked
    sql, statement = checked
    settings = get_settings()
    admin = getattr(request.state, "stride_admin", None)
    try:
        result = await anyio.to_thread.run_sync(
            lambda: run_read_only_query(
                statement,
                url=settings.readonly_db_url,
                timeout_ms=settings.query_statement_timeout_ms,
                row_limit=settings.query_row_limit,
                byte_limit=settings.query_byte_limit,
            )
        )
    except psycopg.Error as error:
        logger.info("admin %s query failed: %s", admin and admin.username, type(error).__name__)
        return _Outcome(sql=sql, error=friendly_error(error, settings.query_statement_timeout_ms))
    logger.info(
        "admin %s ran a query: %d rows in %.0f ms",
        admin and admin.username,
        len(result.rows),
        result.elapsed_ms,
    )
    return _Outcome(sql=sql, result=result)


class QueryView(BaseView):
    """``/admin/query``: a textarea, a result table, and CSV downloads of the same query: the
    rows the page shows, or the whole result streamed up to a larger limit."""

    name = "SQL query (read-only)"
    icon = "fa-solid fa-terminal"

    async def _page(self, request: Request, outcome: _Outcome) -> Response:
        settings = get_settings()
        try:
            readable = await anyio.to_thread.run_sync(
                lambda: run_read_only_query(
                    READABLE_COLUMNS_QUERY,
                    url=settings.readonly_db_url,
                    timeout_ms=settings.query_statement_timeout_ms,
                    row_limit=settings.query_row_limit,
                    byte_limit=settings.query_byte_limit,
                )
            )
        except psycopg.Error:
            readable = None  # the page still works; the query itself will say what is wrong
        context = {
            "title": "SQL query (read-only)",
            "sql": outcome.sql,
            "result": outcome.result,
            "error": outcome.error,
            "row_limit": settings.query_row_limit,
            "export_row_limit": settings.query_export_row_limit,
            "megabytes": settings.query_byte_limit / 1_000_000,
            "cell_preview_chars": f"{CELL_PREVIEW_CHARS:,}",
            "cell_limit_kb": CELL_BYTE_LIMIT // 1000,
            "timeout_s": settings.query_statement_timeout_ms / 1000,
            "hidden_tables": READONLY_HIDDEN_TABLES,
            "readable_tables": readable.rows if readable else [],
        }
        status = 400 if outcome.error else 200
        return await self.templates.TemplateResponse(
            request, "stride_query.html", context, status_code=status
        )

    @expose("/query", methods=["GET", "POST"], identity="query")
    async def query_page(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._page(request, _Outcome(sql=""))
        return await self._page(request, await _run_from_form(request))

    @expose("/query/csv", methods=["POST"], identity="query_csv")
    async def query_csv(self, request: Request) -> Response:
        """The rows the page shows, as CSV; a last line says so when the query had more."""
        outcome = await _run_from_form(request)
        if outcome.result is None:
            return await self._page(request, outcome)
        settings = get_settings()
        result = outcome.result
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        cut = f"-first-{len(result.rows)}-rows" if result.truncated else ""
        return Response(
            render_csv(
                result.columns, result.rows, page_csv_note(result, settings.query_export_row_limit)
            ),
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": f'attachment; filename="query-{stamp}{cut}.csv"',
                "x-stride-truncated": str(result.truncated).lower(),
                "x-stride-row-limit": str(result.row_limit),
            },
        )

    @expose("/query/csv/full", methods=["POST"], identity="query_csv_full")
    async def query_csv_full(self, request: Request) -> Response:
        """The whole result as a streamed CSV, up to ``STRIDE_QUERY_EXPORT_ROW_LIMIT`` rows (a
        last line says when it stopped there)."""
        checked = await _checked_from_form(request)
        if isinstance(checked, _Outcome):
            return await self._page(request, checked)
        sql, statement = checked
        settings = get_settings()
        admin = getattr(request.state, "stride_admin", None)
        try:
            chunks = await anyio.to_thread.run_sync(
                lambda: stream_read_only_csv(
                    statement,
                    url=settings.readonly_db_url,
                    timeout_ms=settings.query_statement_timeout_ms,
                    row_limit=settings.query_export_row_limit,
                    batch_bytes=settings.query_byte_limit,
                    total_s=settings.query_export_timeout_s,
                )
            )
        except psycopg.Error as error:
            return await self._page(
                request,
                _Outcome(sql=sql, error=friendly_error(error, settings.query_statement_timeout_ms)),
            )
        logger.info("admin %s downloads a full query result", admin and admin.username)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        return StreamingResponse(
            chunks,
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": f'attachment; filename="query-{stamp}-full.csv"',
                "x-stride-row-limit": str(settings.query_export_row_limit),
            },
        )
