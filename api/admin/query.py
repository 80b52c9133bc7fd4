"""The read-only SQL page of the admin panel (``/admin/query``) for operations staff.

Defence in depth: a statement check gives a clear message for anything but one SELECT; the
statement then runs as the read-only PostgreSQL role, inside a ``READ ONLY`` transaction with
a local ``statement_timeout``, through a server-side cursor (``DECLARE`` accepts a single
query only) from which at most ``query_row_limit`` rows are fetched.

Each query runs on a connection of its own, closed after it (no pool): whatever a query did
to its session (an advisory lock, a setting, a prepared statement) ends with the request.
The check also refuses advisory locks outright, so a query cannot even hold one while it runs.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import anyio
import psycopg
from psycopg import errors as pg_errors
from pydantic import BaseModel, Field, ValidationError
from sqladmin import BaseView, expose
from sqlalchemy import create_engine, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool
from starlette.requests import Request
from starlette.responses import Response

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
_DOLLAR_QUOTE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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


def render_csv(columns: Sequence[str], rows: Sequence[Sequence[str | None]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_safe(c) for c in columns])
    writer.writerows([csv_safe(v) for v in row] for row in rows)
    return out.getvalue()


def limit_rows(rows: Sequence[Any], row_limit: int) -> tuple[list[Any], bool]:
    """At most ``row_limit`` rows, and whether more were there (fetch ``row_limit + 1``)."""
    return list(rows[:row_limit]), len(rows) > row_limit


def friendly_error(error: psycopg.Error, timeout_ms: int) -> str:
    """What a non-engineer should read instead of a stack trace."""
    detail = (error.diag.message_primary if error.diag else None) or str(error).strip()
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
    truncated: bool
    row_limit: int
    elapsed_ms: float


def run_read_only_query(
    statement: str, *, url: str, timeout_ms: int, row_limit: int
) -> QueryResult:
    """Run one checked query as the read-only role; raises psycopg.Error on database errors."""
    started = time.perf_counter()
    try:
        with _query_engine(url).connect() as conn:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            conn.execute(
                text("SELECT set_config('statement_timeout', :timeout, true)"),
                {"timeout": f"{int(timeout_ms)}ms"},
            )
            dbapi = conn.connection.dbapi_connection
            assert isinstance(dbapi, psycopg.Connection)
            with dbapi.cursor(name="stride_admin_query") as cursor:
                cursor.execute(statement)
                fetched = cursor.fetchmany(row_limit + 1)
                columns = [d.name for d in cursor.description or ()]
            conn.rollback()
    except sa_exc.DBAPIError as error:
        if isinstance(error.orig, psycopg.Error):
            raise error.orig from error
        raise
    rows, truncated = limit_rows(fetched, row_limit)
    return QueryResult(
        columns=columns,
        rows=[[cell_text(v) for v in row] for row in rows],
        truncated=truncated,
        row_limit=row_limit,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


class QueryForm(BaseModel):
    sql: str = Field(default="", max_length=MAX_SQL_LENGTH)


@dataclass
class _Outcome:
    sql: str
    result: QueryResult | None = None
    error: str | None = None


async def _run_from_form(request: Request) -> _Outcome:
    form = await request.form()
    try:
        query = QueryForm(sql=str(form.get("sql") or ""))
    except ValidationError:
        return _Outcome(sql="", error=f"The query is too long (at most {MAX_SQL_LENGTH} chars).")
    settings = get_settings()
    try:
        statement = check_read_only_statement(query.sql)
    except QueryRejectedError as rejected:
        return _Outcome(sql=query.sql, error=str(rejected))
    admin = getattr(request.state, "stride_admin", None)
    try:
        result = await anyio.to_thread.run_sync(
            lambda: run_read_only_query(
                statement,
                url=settings.readonly_db_url,
                timeout_ms=settings.query_statement_timeout_ms,
                row_limit=settings.query_row_limit,
            )
        )
    except psycopg.Error as error:
        logger.info("admin %s query failed: %s", admin and admin.username, type(error).__name__)
        return _Outcome(
            sql=query.sql, error=friendly_error(error, settings.query_statement_timeout_ms)
        )
    logger.info(
        "admin %s ran a query: %d rows in %.0f ms",
        admin and admin.username,
        len(result.rows),
        result.elapsed_ms,
    )
    return _Outcome(sql=query.sql, result=result)


class QueryView(BaseView):
    """``/admin/query``: a textarea, a result table and a CSV download of the same query."""

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
        outcome = await _run_from_form(request)
        if outcome.result is None:
            return await self._page(request, outcome)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        return Response(
            render_csv(outcome.result.columns, outcome.result.rows),
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": f'attachment; filename="query-{stamp}.csv"',
                "x-stride-truncated": str(outcome.result.truncated).lower(),
            },
        )
