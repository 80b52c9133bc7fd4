"""The SQL page's CSV says when it stopped at the page's row limit, and the full result
downloads as a streamed CSV up to ``STRIDE_QUERY_EXPORT_ROW_LIMIT`` rows, with the page's
checks, role and statement timeout (issue #12, admin item 6)."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from api.admin.query import READ_ONLY_MESSAGE
from core.platform.config import get_settings

TEN_ROWS = "SELECT g, 'row ' || g AS label FROM generate_series(1, 10) g ORDER BY g"


def _limits(settings: pytest.MonkeyPatch, **limits: int) -> None:
    for name, value in limits.items():
        settings.setenv(f"STRIDE_{name.upper()}", str(value))
    get_settings.cache_clear()


def test_the_page_csv_says_it_stopped_at_the_page_limit(
    viewer: TestClient, query_settings: pytest.MonkeyPatch
) -> None:
    _limits(query_settings, query_row_limit=3, query_export_row_limit=50)
    page = viewer.post("/admin/query", data={"sql": TEN_ROWS})
    assert 'id="download-full-csv"' in page.text
    assert "Download the full result (CSV, up to 50 rows)" in page.text
    response = viewer.post("/admin/query/csv", data={"sql": TEN_ROWS})
    assert response.status_code == 200
    assert response.headers["x-stride-truncated"] == "true"
    assert "-first-3-rows.csv" in response.headers["content-disposition"]
    *rows, note = list(csv.reader(io.StringIO(response.text)))
    assert rows == [["g", "label"], ["1", "row 1"], ["2", "row 2"], ["3", "row 3"]]
    assert note == [
        "# Stopped at the page's limit of 3 rows: the query has more."
        " 'Download the full result' gives up to 50 rows."
    ]


def test_a_whole_result_has_no_note(viewer: TestClient) -> None:
    response = viewer.post("/admin/query/csv", data={"sql": TEN_ROWS})
    assert response.headers["x-stride-truncated"] == "false"
    assert list(csv.reader(io.StringIO(response.text)))[-1] == ["10", "row 10"]


def test_the_full_result_streams_every_row_beyond_the_page_limit(
    viewer: TestClient, query_settings: pytest.MonkeyPatch
) -> None:
    _limits(query_settings, query_row_limit=3)
    sql = "SELECT g, repeat('x', 1000) AS pad FROM generate_series(1, 2500) g ORDER BY g"
    with viewer.stream("POST", "/admin/query/csv/full", data={"sql": sql}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert response.headers["x-stride-row-limit"] == "100000"
        assert "-full.csv" in response.headers["content-disposition"]
        chunks = list(response.iter_text())
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    assert rows[0] == ["g", "pad"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 2501))
    assert len(chunks) > 2  # sent a batch at a time, not built whole


def test_the_full_result_stops_at_the_export_limit_and_says_so(
    viewer: TestClient, query_settings: pytest.MonkeyPatch
) -> None:
    _limits(query_settings, query_export_row_limit=5)
    response = viewer.post("/admin/query/csv/full", data={"sql": TEN_ROWS})
    *rows, note = list(csv.reader(io.StringIO(response.text)))
    assert [r[0] for r in rows] == ["g", "1", "2", "3", "4", "5"]
    assert note[0].startswith("# Stopped at the export limit of 5 rows: the query has more.")
    exactly = viewer.post(
        "/admin/query/csv/full", data={"sql": "SELECT g FROM generate_series(1, 5) g"}
    )
    assert exactly.text.splitlines() == ["g", "1", "2", "3", "4", "5"]  # no note: nothing left


def test_the_full_result_keeps_the_page_checks_and_the_read_only_role(
    viewer: TestClient,
) -> None:
    write = viewer.post("/admin/query/csv/full", data={"sql": "DELETE FROM score_log"})
    assert write.status_code == 400
    assert READ_ONLY_MESSAGE in write.text
    hidden = viewer.post("/admin/query/csv/full", data={"sql": "SELECT * FROM admin_users"})
    assert hidden.status_code == 400
    assert "permission denied for table admin_users" in hidden.text
    assert hidden.headers["content-type"].startswith("text/html")


def test_the_full_result_runs_under_the_statement_timeout(
    viewer: TestClient, query_settings: pytest.MonkeyPatch
) -> None:
    _limits(query_settings, query_statement_timeout_ms=300)
    at_once = viewer.post("/admin/query/csv/full", data={"sql": "SELECT pg_sleep(5)"})
    assert at_once.status_code == 400
    assert "ran longer than 0.3 s and was stopped" in at_once.text
    # A FETCH past the first batch runs long: the rows sent stay, a last line says why.
    # No ORDER BY: a sort would evaluate every row (the slow one too) before the first FETCH.
    sql = (
        "SELECT g, CASE WHEN g = 150 THEN pg_sleep(5)::text END AS slow"
        " FROM generate_series(1, 300) g"
    )
    later = viewer.post("/admin/query/csv/full", data={"sql": sql})
    assert later.status_code == 200
    *rows, note = list(csv.reader(io.StringIO(later.text)))
    assert [int(r[0]) for r in rows[1:]] == list(range(1, len(rows)))
    assert 0 < len(rows) - 1 < 150
    assert note[0].startswith(f"# Stopped after {len(rows) - 1} rows: The query ran longer")


def test_a_query_that_turns_the_timeout_off_from_inside_is_still_stopped(
    viewer: TestClient, query_settings: pytest.MonkeyPatch
) -> None:
    """``set_config`` is refused by the check, but ``query_to_xml`` runs SQL the check never
    sees: the first FETCH switches the session's timeout off, and the page sets it again
    before every FETCH, so the slow rows of later FETCHes are still stopped."""
    _limits(query_settings, query_statement_timeout_ms=1000)
    sql = (
        "SELECT g, query_to_xml('SELECT set_config(''statement_timeout'', ''0'', false)',"
        " false, false, '') AS off, pg_sleep(CASE WHEN g > 30 THEN 0.4 ELSE 0 END) AS s"
        " FROM generate_series(1, 60) g"
    )
    response = viewer.post("/admin/query/csv/full", data={"sql": sql})
    assert response.status_code == 200
    *rows, note = list(csv.reader(io.StringIO(response.text)))
    assert len(rows) - 1 < 60  # before: all 60 rows, 12 s, with no timeout at all
    assert note[0].startswith(f"# Stopped after {len(rows) - 1} rows: The query ran longer")
    page = viewer.post("/admin/query", data={"sql": sql})
    assert page.status_code == 400
    assert "ran longer than 1 s" in page.text


def test_the_full_result_stops_after_its_time_in_all(
    viewer: TestClient, query_settings: pytest.MonkeyPatch
) -> None:
    """Each FETCH is well within the statement timeout, but the download as a whole is
    bounded by ``STRIDE_QUERY_EXPORT_TIMEOUT_S``."""
    _limits(query_settings, query_statement_timeout_ms=5000, query_export_timeout_s=1)
    sql = "SELECT g, pg_sleep(0.02) AS s FROM generate_series(1, 1000) g"
    response = viewer.post("/admin/query/csv/full", data={"sql": sql})
    assert response.status_code == 200
    *rows, note = list(csv.reader(io.StringIO(response.text)))
    assert 0 < len(rows) - 1 < 1000
    assert note[0] == (
        f"# Stopped after {len(rows) - 1} rows: This ran longer than 1 s in all and was"
        " stopped. Narrow it down (a WHERE on an indexed column, a LIMIT) or ask an engineer."
    )
