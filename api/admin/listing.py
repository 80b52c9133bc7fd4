"""How list pages stay fast on tables of millions of rows (``processed_events``).

* **Counts stop early.** Rows are counted up to ``exact_count_limit + 1`` (no ``ORDER BY``);
  beyond that the count shown is PostgreSQL's estimate (``EXPLAIN``) and says "about".
* **Pages are found by cursor.** The "next" and "prev" links carry the sort key of the last
  (first) row shown, so the next page is an index range scan ``WHERE (key) < (cursor)``, not
  an ``OFFSET`` that reads and drops every row before it. The sort gets the primary key as a
  tie-breaker, so the order is total. Numbered links are offered for the first
  ``MAX_OFFSET_ROWS`` rows only; a page number typed in a URL still works: its offset is
  skipped on the key's columns alone (an index-only scan for the primary key), then the
  page is read from there. A sort on a column that may be NULL pages by ``OFFSET``.
* **Big tables are searched by their indexes.** On a table of more than
  ``search_scan_rows`` rows (PostgreSQL's estimate) the search box matches what operators
  search by and an index answers: a column that leads an index equals the term (an event
  id, a game id), or starts with it when that index has pattern ops (a player id, migration
  0012). Other columns are not searched there: ``ILIKE '%…%'`` reads the whole table (69 s
  at 10 M rows). Each of those conditions is probed first (one index lookup) and the list
  names only those that find a row, so that a search is one index's range, not an ``OR``.
  Smaller tables keep sqladmin's substring search on every text column.
* **Statements are time-limited.** Every statement of the panel's sessions runs under
  ``STRIDE_ADMIN_STATEMENT_TIMEOUT_MS``; a page stopped by it explains what to do.
"""

from __future__ import annotations

import base64
import binascii
import builtins  # the class below defines a method named ``list``
import enum
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import anyio
from psycopg import errors as pg_errors
from sqladmin import ModelView
from sqladmin.filters import OperationColumnFilter
from sqladmin.pagination import PageControl, Pagination
from sqlalchemy import (
    ColumnElement,
    PrimaryKeyConstraint,
    Select,
    Table,
    UniqueConstraint,
    Uuid,
    asc,
    desc,
    false,
    func,
    inspect,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import InstrumentedAttribute, Mapper, selectinload
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.requests import Request

from core.platform.config import get_settings

# Numbered page links reach this deep at most; further pages are reached by cursor.
MAX_OFFSET_ROWS = 10_000
CURSOR_PARAMS = ("after", "before")


def timeout_message(timeout_ms: int) -> str:
    return (
        f"This list took longer than {timeout_ms / 1000:g} s and was stopped. Narrow it down "
        "with a filter on an id or a game (those are indexed), sort by another column, or ask "
        "an engineer for a query on the SQL page."
    )


class EstimatedCount(int):
    """A row count PostgreSQL estimated: shown as "about 10,000,000"."""

    def __str__(self) -> str:
        return f"about {int(self):,}"


def key_text(value: Any) -> str:
    """A sort key value as the cursor carries it."""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def key_value(python_type: type, raw: str) -> Any:
    """A cursor's sort key value back as the column's Python type; ValueError if it is not."""
    if python_type is datetime:
        return datetime.fromisoformat(raw)
    if python_type is date:
        return date.fromisoformat(raw)
    if python_type is bool:
        if raw not in ("true", "false"):
            raise ValueError(raw)
        return raw == "true"
    if python_type in (int, float, Decimal, uuid.UUID, str) or issubclass(python_type, enum.Enum):
        try:
            return python_type(raw)
        except (ArithmeticError, TypeError) as error:
            raise ValueError(raw) from error
    raise ValueError(f"cannot page by a {python_type.__name__} column")


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: the sort key of the row next to it, and a fingerprint of the
    listing (sort, filters, search) it belongs to, so it is ignored anywhere else."""

    values: tuple[str, ...]
    query: str

    def encode(self) -> str:
        data = json.dumps([list(self.values), self.query], separators=(",", ":"))
        return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, raw: str) -> Cursor:
        """ValueError for anything but a cursor this module encoded."""
        try:
            data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            values, query = data
            if not (isinstance(query, str) and all(isinstance(v, str) for v in values)):
                raise ValueError(raw)
        except (binascii.Error, json.JSONDecodeError, TypeError, UnicodeDecodeError) as error:
            raise ValueError(raw) from error
        return cls(tuple(values), query)


def listing_fingerprint(params: list[tuple[str, str]]) -> str:
    """What identifies a listing: its query parameters but paging and cursors."""
    kept = sorted((k, v) for k, v in params if k not in ("page", "pageSize", *CURSOR_PARAMS))
    return hashlib.sha256(json.dumps(kept).encode()).hexdigest()[:16]


@dataclass
class StridePagination(Pagination):
    """sqladmin's pagination, with "prev"/"next" by cursor and no clamping to an estimate."""

    has_more: bool = False  # a row follows this page
    before_first: str | None = None  # cursor of the page before (None: by number)
    after_last: str | None = None  # cursor of the page after (None: by number)
    page_controls: list[PageControl] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page_size must be greater than 0")

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.has_more

    def add_pagination_urls(self, base_url: URL) -> None:
        plain = base_url.remove_query_params(CURSOR_PARAMS)
        numbered = {
            p
            for p in range(max(1, self.page - 3), self.page + self.max_page_controls + 1)
            if (p - 1) * self.page_size <= min(MAX_OFFSET_ROWS, max(self.count - 1, 0))
        }
        if self.has_previous:
            numbered.add(self.page - 1)
        if self.has_next:
            numbered.add(self.page + 1)
        for p in sorted(numbered | {self.page}):
            url = plain.include_query_params(page=p)
            if p == self.page - 1 and self.before_first:
                url = url.include_query_params(before=self.before_first)
            elif p == self.page + 1 and self.after_last:
                url = url.include_query_params(after=self.after_last)
            self.page_controls.append(PageControl(number=p, url=str(url)))


@contextmanager
def stopped_statements_explained() -> Iterator[None]:
    """A statement stopped by the panel's statement timeout becomes a page saying why."""
    try:
        yield
    except sa_exc.OperationalError as error:
        if not isinstance(error.orig, pg_errors.QueryCanceled):
            raise
        timeout_ms = get_settings().admin_statement_timeout_ms
        raise HTTPException(status_code=503, detail=timeout_message(timeout_ms)) from error


# B-tree operator classes that answer ``LIKE 'prefix%'`` whatever the database's collation.
PATTERN_OPS = frozenset({"text_pattern_ops", "varchar_pattern_ops", "bpchar_pattern_ops"})


@dataclass(frozen=True)
class IndexedSearch:
    """How a big table's search finds rows through its indexes: names of the columns that
    must equal the term, and of those that must start with it."""

    exact: frozenset[str]
    prefix: frozenset[str]

    @classmethod
    def of(cls, table: Table) -> IndexedSearch:
        """The columns that lead an index of ``table`` (primary key, unique constraints,
        indexes); those whose index has pattern ops can be matched by prefix."""
        exact: set[str] = set()
        prefix: set[str] = set()
        for constraint in table.constraints:
            if isinstance(constraint, PrimaryKeyConstraint | UniqueConstraint) and len(
                constraint.columns
            ):
                exact.add(next(iter(constraint.columns)).name)
        for index in table.indexes:
            columns = list(index.columns)
            if not columns:  # an index on expressions only
                continue
            ops = index.dialect_options["postgresql"].get("ops") or {}
            (prefix if ops.get(columns[0].name) in PATTERN_OPS else exact).add(columns[0].name)
        return cls(frozenset(exact - prefix), frozenset(prefix))

    def condition(self, columns: builtins.list[Any], term: str) -> ColumnElement[bool]:
        """Rows where one of ``columns`` (mapped attributes) matches ``term`` through an
        index; a term that matches none of them (not a UUID, say) finds nothing."""
        return or_(false(), *self.matches(columns, term))

    def matches(self, columns: builtins.list[Any], term: str) -> builtins.list[ColumnElement[bool]]:
        """One condition per column of ``columns`` that ``term`` can match through an index
        (PostgreSQL text holds no NUL: it is dropped from the term)."""
        term = term.replace("\x00", "")
        matches: builtins.list[ColumnElement[bool]] = []
        for attribute in columns:
            column = attribute.property.columns[0]
            if column.name in self.prefix:
                matches.append(attribute.like(like_prefix(term), escape="\\"))
            elif column.name in self.exact:
                if isinstance(column.type, Uuid):
                    try:
                        matches.append(attribute == uuid.UUID(term))
                    except ValueError:
                        continue
                else:
                    matches.append(attribute == term)
        return matches

    def described(self, names: builtins.list[str]) -> str:
        """What the search box searches, for its placeholder."""
        exact = [n for n in names if n in self.exact]
        prefix = [n for n in names if n in self.prefix]
        parts = ([f"{', '.join(exact)} (exact)"] if exact else []) + (
            [f"{', '.join(prefix)} (or its beginning)"] if prefix else []
        )
        return "; ".join(parts) or "nothing on a table this big: use the filters"


def like_prefix(term: str) -> str:
    """A ``LIKE`` pattern of the values starting with ``term`` (its wildcards escaped)."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


# The conditions of the request's search that found a row (see ScalableListView.probe).
_PROBED: ContextVar[builtins.list[ColumnElement[bool]] | None] = ContextVar(
    "probed_search", default=None
)

SortKey = list[tuple[InstrumentedAttribute, bool]]  # (attribute, descending)


def _ordered(stmt: Select, key: SortKey, *, backwards: bool = False) -> Select:
    return stmt.order_by(*(desc(a) if d != backwards else asc(a) for a, d in key))


def _beyond(
    key: SortKey, values: tuple[Any, ...], backwards: bool = False, *, inclusive: bool = False
) -> ColumnElement[bool]:
    """Rows after ``values`` in the key's order (before them ``backwards``), as a row-value
    comparison an index on the key's columns answers with a range scan."""
    position, at = tuple_(*(a for a, _ in key)), tuple_(*values)
    if key[0][1] != backwards:  # descending
        return position <= at if inclusive else position < at
    return position >= at if inclusive else position > at


class ScalableListView(ModelView):
    """sqladmin's list page with the early counts, cursor pages and explained timeouts above."""

    exact_count_limit: ClassVar[int] = 10_000  # above, list pages show an estimate
    search_scan_rows: ClassVar[int] = 100_000  # above, the search uses indexes only
    table_rows_ttl_s: ClassVar[float] = 60.0  # how long the table's size estimate is kept
    _table_rows: tuple[float, int] | None = None  # (when, PostgreSQL's estimate)

    async def table_rows(self) -> int:
        """The table's rows as PostgreSQL estimates them, re-read every ``table_rows_ttl_s``."""
        known = self._table_rows
        if known is None or time.monotonic() - known[0] > self.table_rows_ttl_s:
            rows = await anyio.to_thread.run_sync(self._planned_rows, select(self.model))
            known = self._table_rows = (time.monotonic(), rows)
        return known[1]

    def _is_big(self) -> bool:
        return self._table_rows is not None and self._table_rows[1] > self.search_scan_rows

    def _table(self) -> Table:
        mapper: Mapper[Any] = inspect(self.model)
        table = mapper.local_table
        assert isinstance(table, Table)
        return table

    def _searched_attributes(self) -> builtins.list[Any]:
        return [getattr(self.model, f) for f in self._search_fields if "." not in f]

    def search_query(self, stmt: Select, term: str) -> Select:
        """sqladmin's substring search, or on a big table (as last measured by
        :meth:`table_rows`) the search its indexes answer (:class:`IndexedSearch`)."""
        if not self._is_big():
            return super().search_query(stmt, term)
        probed = _PROBED.get()
        if probed is not None:  # the conditions that find a row (filtered_query probed them)
            return stmt.where(or_(false(), *probed))
        indexed = IndexedSearch.of(self._table())
        return stmt.where(indexed.condition(self._searched_attributes(), term))

    def search_placeholder(self) -> str:
        if not self._is_big():
            return super().search_placeholder()
        names = [a.property.columns[0].name for a in self._searched_attributes()]
        return IndexedSearch.of(self._table()).described(names)

    async def filtered_query(self, request: Request) -> Select:
        """The list query with the request's filters and search, not sorted nor paged."""
        stmt = self.list_query(request)
        await self.table_rows()  # a big table is searched by its indexes
        for column_filter in self.get_filters():  # as sqladmin's list page applies them
            name = column_filter.parameter_name
            value = request.query_params.get(name)
            if isinstance(column_filter, OperationColumnFilter):
                operation = request.query_params.get(f"{name}_op")
                if value and operation:
                    stmt = await column_filter.get_filtered_query(
                        stmt, operation, value, self.model
                    )
            elif value:  # a filter of one value (boolean, listed values)
                simple: Any = column_filter
                stmt = await simple.get_filtered_query(stmt, value, self.model)
        if search := request.query_params.get("search"):
            token = _PROBED.set(await self.probe(search) if self._is_big() else None)
            try:
                stmt = self.search_query(stmt=stmt, term=search)
            finally:
                _PROBED.reset(token)
        return stmt

    async def probe(self, term: str) -> builtins.list[ColumnElement[bool]]:
        """Of a big table's search conditions (:class:`IndexedSearch`), those that find a
        row, one index probe each. The list's query then names only those: an ``OR`` of
        conditions on several columns keeps PostgreSQL from reading an index in the list's
        order (``game-7`` as a game id or a player id prefix: 6 s at 10 M rows; as the game
        id alone, a range of the primary key: 58 ms for the page)."""
        found = []
        for match in IndexedSearch.of(self._table()).matches(self._searched_attributes(), term):
            probe = select(literal(1)).select_from(self.model).where(match).limit(1)
            if await self._run_arbitrary_query(probe):
                found.append(match)
        return found

    def sort_key(self, request: Request) -> SortKey:
        """(attribute, descending) of the list's order: the chosen or default sort, then the
        primary key in the same direction, so that the order is total."""
        sort_by = request.query_params.get("sortBy")
        if sort_by:
            if sort_by not in self._sort_fields:
                raise HTTPException(status_code=400, detail="Invalid sortBy parameter")
            fields = [(sort_by, request.query_params.get("sort", "asc") == "desc")]
        else:
            fields = self._get_default_sort()
        key = [(getattr(self.model, self._get_prop_name(f)), d) for f, d in fields]
        mapper: Mapper[Any] = inspect(self.model)
        for column in self.pk_columns:
            attribute = getattr(self.model, mapper.get_property_by_column(column).key)
            if all(attribute is not a for a, _ in key):
                key.append((attribute, key[0][1]))
        return key

    def sort_query(self, stmt: Select, request: Request) -> Select:
        return _ordered(stmt, self.sort_key(request))

    @staticmethod
    def _pages_by_cursor(key: SortKey) -> bool:
        """A row-value comparison finds the next page if the key has one direction and no
        column of it may be NULL (NULLs would fall out of ``(a, b) < (x, y)``)."""
        columns = [a.property.columns[0] for a, _ in key]
        try:
            _ = [c.type.python_type for c in columns]
        except NotImplementedError:
            return False
        return len({d for _, d in key}) == 1 and not any(c.nullable for c in columns)

    def _cursor_from(
        self, request: Request, key: SortKey, listing: str
    ) -> tuple[str, tuple[Any, ...]] | None:
        """("after" or "before", the key values) of the request's cursor, when it has a valid
        one of this listing; otherwise the page is found by number."""
        if not self._pages_by_cursor(key):
            return None
        for direction in CURSOR_PARAMS:
            raw = request.query_params.get(direction)
            if raw is None:
                continue
            try:
                cursor = Cursor.decode(raw)
                if cursor.query != listing or len(cursor.values) != len(key):
                    return None
                types_ = [a.property.columns[0].type.python_type for a, _ in key]
                return direction, tuple(
                    key_value(t, v) for t, v in zip(types_, cursor.values, strict=True)
                )
            except ValueError:
                return None
        return None

    def _cursor_at(self, row: Any, key: SortKey, listing: str) -> str:
        return Cursor(tuple(key_text(getattr(row, a.key)) for a, _ in key), listing).encode()

    async def count_rows(self, stmt: Select) -> int:
        """Rows of ``stmt`` counted up to ``exact_count_limit`` (one more tells that there are
        more), beyond that PostgreSQL's estimate; never a count of the whole table."""
        limit = self.exact_count_limit
        bounded = stmt.with_only_columns(*self.pk_columns).order_by(None).limit(limit + 1)
        [(counted,)] = await self._run_arbitrary_query(
            select(func.count()).select_from(bounded.subquery())
        )
        if counted <= limit:
            return int(counted)
        estimate = await anyio.to_thread.run_sync(self._planned_rows, stmt)
        return EstimatedCount(max(limit + 1, estimate))

    def _planned_rows(self, stmt: Select) -> int:
        with self.session_maker() as session:
            conn = session.connection()
            compiled = stmt.order_by(None).compile(dialect=conn.dialect)
            plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params)
            return int(plan.scalar_one()[0]["Plan"]["Plan Rows"])

    async def list(self, request: Request) -> Pagination:
        with stopped_statements_explained():
            return await self._list(request)

    async def _list(self, request: Request) -> StridePagination:
        page = self.validate_page_number(request.query_params.get("page"), 1)
        page_size = self.validate_page_number(request.query_params.get("pageSize"), self.page_size)
        page_size = min(page_size, max(self.page_size_options))
        if page_size < 1:
            raise HTTPException(status_code=400, detail="Invalid page or pageSize parameter")
        stmt = await self.filtered_query(request)
        key = self.sort_key(request)
        listing = listing_fingerprint(request.query_params.multi_items())
        count = await self.count_rows(stmt)
        cursor = self._cursor_from(request, key, listing)
        if cursor is None:  # by number, up to the last page (of the estimate, if estimated)
            page = max(1, min(page, Pagination.max_page(count, page_size)))
            rows = await self._rows_by_number(stmt, key, (page - 1) * page_size, page_size + 1)
            has_more = len(rows) > page_size
            rows = rows[:page_size]
        else:  # the rows just after (or, going back, just before) the cursor's row
            direction, values = cursor
            backwards = direction == "before"
            paged = _ordered(stmt.where(_beyond(key, values, backwards)), key, backwards=backwards)
            rows = await self._rows(paged.limit(page_size + 1))
            has_more = backwards or len(rows) > page_size
            rows = rows[:page_size][::-1] if backwards else rows[:page_size]
        by_cursor = self._pages_by_cursor(key) and bool(rows)
        return StridePagination(
            rows=rows,
            page=page,
            page_size=page_size,
            count=count,
            has_more=has_more,
            before_first=self._cursor_at(rows[0], key, listing) if by_cursor else None,
            after_last=self._cursor_at(rows[-1], key, listing) if by_cursor else None,
        )

    async def _rows(self, stmt: Select) -> builtins.list[Any]:
        for relation in self._list_relations:
            stmt = stmt.options(selectinload(relation))
        return list(await self._run_query(stmt))

    async def _rows_by_number(
        self, stmt: Select, key: SortKey, offset: int, limit: int
    ) -> builtins.list[Any]:
        """``limit`` rows from ``offset`` on. With a key a cursor can use, the offset is
        skipped on the key's columns alone (for the primary key, an index-only scan: a
        million entries in a fraction of a second), then the rows are read from there."""
        if not offset or not self._pages_by_cursor(key):
            return await self._rows(_ordered(stmt, key).offset(offset).limit(limit))
        columns = stmt.with_only_columns(*(a for a, _ in key))
        start = await self._run_arbitrary_query(_ordered(columns, key).offset(offset).limit(1))
        if not start:
            return []
        from_start = stmt.where(_beyond(key, tuple(start[0]), inclusive=True))
        return await self._rows(_ordered(from_start, key).limit(limit))
