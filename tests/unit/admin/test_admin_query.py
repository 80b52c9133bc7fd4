"""The SQL page's pure parts: which text may run, how results become cells and CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import errors as pg_errors

from api.admin.query import (
    CELL_BYTE_LIMIT,
    MAX_SQL_LENGTH,
    READ_ONLY_MESSAGE,
    QueryRejectedError,
    ResultBudget,
    capped_cells,
    capped_query,
    cell_text,
    check_read_only_statement,
    csv_safe,
    fetch_batch,
    friendly_error,
    render_csv,
)


@pytest.mark.parametrize(
    ("sql", "statement"),
    [
        ("SELECT 1", "SELECT 1"),
        ("  select * from score_log ;  ", "select * from score_log"),
        ("SELECT 1; -- done", "SELECT 1"),
        ("WITH t AS (SELECT 1 AS x) SELECT x FROM t", "WITH t AS (SELECT 1 AS x) SELECT x FROM t"),
        ("VALUES (1), (2)", "VALUES (1), (2)"),
        ("TABLE score_log", "TABLE score_log"),
        ("(SELECT 1) UNION (SELECT 2)", "(SELECT 1) UNION (SELECT 2)"),
        ("SELECT 'a;b; DELETE'", "SELECT 'a;b; DELETE'"),
        ("SELECT 'it''s; fine'", "SELECT 'it''s; fine'"),
        ("SELECT E'\\'; DROP'", "SELECT E'\\'; DROP'"),
        ('SELECT "odd;""name" FROM t', 'SELECT "odd;""name" FROM t'),
        ("SELECT $$; DELETE FROM t$$", "SELECT $$; DELETE FROM t$$"),
        ("SELECT $q$ ; UPDATE $q$", "SELECT $q$ ; UPDATE $q$"),
        ("/* ; DELETE */ SELECT 1", "/* ; DELETE */ SELECT 1"),
        ("/* nested /* ; */ ; */ SELECT 1", "/* nested /* ; */ ; */ SELECT 1"),
        ("SELECT 1 -- ; UPDATE t\n", "SELECT 1 -- ; UPDATE t"),
        ("SELECT CASE WHEN score > 1 THEN 'hi' END FROM t", None),
        ("SELECT comment, updated_at, deleted FROM t", None),
        ("SELECT user_id FROM score_log WHERE user_id LIKE 'a%'", None),
    ],
)
def test_single_queries_are_accepted(sql: str, statement: str | None) -> None:
    assert check_read_only_statement(sql) == (statement or sql)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE score_log SET score = 0",
        "insert into score_log default values",
        "DELETE FROM score_log",
        "WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone",
        "SELECT * FROM score_log FOR UPDATE",
        "MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE",
        "drop table score_log",
        "/* harmless */ TRUNCATE score_log",
        "CREATE TABLE x (id int)",
        "ALTER ROLE stride_readonly SET statement_timeout = 0",
        "set statement_timeout = 0",
        "GRANT SELECT ON admin_users TO public",
        "COPY score_log TO STDOUT",
        "BEGIN",
        "DO $$ BEGIN PERFORM 1; END $$",
    ],
)
def test_writes_get_the_read_only_message(sql: str) -> None:
    with pytest.raises(QueryRejectedError, match=r"^This page is read-only"):
        check_read_only_statement(sql)
    assert READ_ONLY_MESSAGE == "This page is read-only: INSERT/UPDATE/DELETE/DDL are not allowed."


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pg_advisory_lock(1)",
        "select PG_ADVISORY_LOCK_SHARED(1, 2)",
        "SELECT pg_catalog.pg_try_advisory_lock(1)",
        "SELECT pg_advisory_xact_lock(1), pg_sleep(4)",
        "WITH l AS (SELECT pg_try_advisory_xact_lock_shared(7)) SELECT * FROM l",
        'SELECT "pg_advisory_lock"(1)',
    ],
)
def test_locks_are_refused_with_a_reason(sql: str) -> None:
    with pytest.raises(QueryRejectedError, match=r"^Locks cannot be taken from this page"):
        check_read_only_statement(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT set_config('statement_timeout', '0', false)",
        "select PG_CATALOG.SET_CONFIG('work_mem', '1GB', true), 1",
        "SELECT \"set_config\"('statement_timeout', '0', false)",
    ],
)
def test_settings_cannot_be_changed_from_the_page(sql: str) -> None:
    with pytest.raises(QueryRejectedError, match=r"^Settings cannot be changed from this page"):
        check_read_only_statement(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'pg_advisory_lock(1)'",
        'SELECT "PG_ADVISORY_LOCK" FROM t',  # a column of that (other) name
        "SELECT pg_advisory_unlock_all()",
        "SELECT * FROM pg_locks WHERE locktype = 'advisory'",
    ],
)
def test_lock_names_elsewhere_are_fine(sql: str) -> None:
    assert check_read_only_statement(sql) == sql


@pytest.mark.parametrize("sql", ["SELECT 1; SELECT 2", "SELECT 1; DELETE FROM t", "select 1;;x"])
def test_one_statement_at_a_time(sql: str) -> None:
    with pytest.raises(QueryRejectedError, match="One statement at a time"):
        check_read_only_statement(sql)


@pytest.mark.parametrize("sql", ["", "   ", "-- only a comment", ";;", "/* nothing */"])
def test_empty_text_asks_for_a_query(sql: str) -> None:
    with pytest.raises(QueryRejectedError, match="Type a SELECT query first"):
        check_read_only_statement(sql)


@pytest.mark.parametrize("sql", ["EXPLAIN SELECT 1", "SHOW search_path", "FETCH ALL FROM c"])
def test_other_statements_are_named(sql: str) -> None:
    with pytest.raises(QueryRejectedError, match="Only queries can run here"):
        check_read_only_statement(sql)


def test_overlong_text_is_refused() -> None:
    with pytest.raises(QueryRejectedError, match="too long"):
        check_read_only_statement("SELECT " + "1" * MAX_SQL_LENGTH)


@given(st.text(alphabet=st.sampled_from(list("SELECT 1;'\"$-/*\\eE\n ab")), max_size=60))
def test_any_text_is_either_one_statement_of_it_or_a_clear_rejection(sql: str) -> None:
    try:
        statement = check_read_only_statement(sql)
    except QueryRejectedError as rejected:
        assert str(rejected)
    else:
        assert statement
        assert statement in sql


def test_cells_render_values_as_people_read_them() -> None:
    assert cell_text(None) is None
    assert cell_text(3.5) == "3.5"
    assert cell_text(datetime(2026, 11, 22, 4, 5, tzinfo=UTC)) == "2026-11-22T04:05:00+00:00"
    assert cell_text({"a": [1, "é"]}) == '{"a": [1, "é"]}'
    assert cell_text(b"\x01\xff") == "\\x01ff"


def test_csv_keeps_numbers_and_defuses_formulas() -> None:
    assert csv_safe(None) == ""
    assert csv_safe("-12.5") == "-12.5"
    assert csv_safe("player-1") == "player-1"
    assert csv_safe('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert csv_safe("@SUM(A1)") == "'@SUM(A1)"
    assert csv_safe("-2+3+cmd|' /C calc'!A0") == "'-2+3+cmd|' /C calc'!A0"


def test_render_csv_round_trips_through_a_csv_reader() -> None:
    text = render_csv(["user_id", "note"], [["p1", 'say "hi", ok'], ["p2", None]])
    assert list(csv.reader(io.StringIO(text))) == [
        ["user_id", "note"],
        ["p1", 'say "hi", ok'],
        ["p2", ""],
    ]


def test_the_budget_stops_at_the_row_limit() -> None:
    budget = ResultBudget(row_limit=3, byte_limit=1000)
    assert all(budget.take([str(i)]) for i in range(3))
    assert budget.cut_by is None
    assert not budget.take(["4"])
    assert (budget.rows, budget.cut_by) == ([["0"], ["1"], ["2"]], "rows")


def test_the_budget_stops_before_the_byte_limit() -> None:
    budget = ResultBudget(row_limit=100, byte_limit=10)
    assert budget.take(["abcd", None])
    assert budget.take(["é" * 3])  # 6 bytes in UTF-8: exactly the limit
    assert not budget.take(["x"])
    assert (len(budget.rows), budget.used_bytes, budget.cut_by) == (2, 10, "bytes")


def test_a_first_row_over_the_limit_is_not_shown() -> None:
    budget = ResultBudget(row_limit=100, byte_limit=10)
    assert not budget.take(["x" * 11])
    assert (budget.rows, budget.cut_by) == ([], "bytes")


def test_a_fetch_batch_of_the_widest_rows_fits_the_byte_limit() -> None:
    assert fetch_batch(1, 5_000_000) == 50
    assert fetch_batch(10, 5_000_000) == 5
    assert fetch_batch(1000, 5_000_000) == 1
    assert fetch_batch(1, 10**12) == 100
    for width in (1, 3, 10, 49, 50):  # wider rows are fetched one at a time
        assert fetch_batch(width, 5_000_000) * width * CELL_BYTE_LIMIT <= 5_000_000


def test_cut_values_show_a_preview_and_their_size() -> None:
    row = (1, None, None, [None, None, "abc"], [None, None, 123_456])
    assert capped_cells(row, 3) == (["1", None, "abc… [cut: 123,456 bytes]"], 1)


def test_the_capped_query_wraps_the_statement_on_lines_of_its_own() -> None:
    sql = capped_query("SELECT 1 -- the end", 1)
    assert "\nSELECT 1 -- the end\n) AS stride_query(c0)" in sql
    assert f"octet_length(c0::text) > {CELL_BYTE_LIMIT}" in sql


def test_database_errors_become_friendly_messages() -> None:
    timeout = friendly_error(pg_errors.QueryCanceled("canceling statement"), 1500)
    assert timeout.startswith("The query ran longer than 1.5 s and was stopped.")
    read_only = pg_errors.ReadOnlySqlTransaction("cannot execute nextval()")
    assert friendly_error(read_only, 1000) == READ_ONLY_MESSAGE
    denied = friendly_error(pg_errors.InsufficientPrivilege("permission denied for t"), 1000)
    assert denied.startswith("Not allowed: permission denied for t.")
    assert "admin_users" in denied
    syntax = friendly_error(pg_errors.SyntaxError('syntax error at or near "FORM"'), 1000)
    assert syntax == 'SQL error: syntax error at or near "FORM"'
