"""A big table's list page is searched and sorted through its indexes (migration 0012): a
search matches event ids exactly and player ids by their beginning, and the plans of the
panel's own statements use the indexes. Measured at 10 M rows in ``bench/admin_lists.py``;
here the table is small, so it counts as big by lowering the threshold, and the plans are
read with sequential scans disabled (what the planner does once reading all is dearer)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from api.admin.listing import IndexedSearch, like_prefix
from api.admin.views import StrideModelView
from core.events.models import ProcessedEvent

LIST = "/admin/processed-events/list"


@pytest.fixture
def rows(db_engine: Engine) -> dict[str, Any]:
    """Three processed events of a fresh game and player prefix."""
    tag = uuid.uuid4().hex[:8]
    ids = [uuid.uuid4() for _ in range(3)]
    at = datetime(2026, 11, 30, tzinfo=UTC)
    with db_engine.begin() as conn:
        for n, event_id in enumerate(ids):
            conn.execute(
                text(
                    "INSERT INTO processed_events (game_id, event_id, player_id, type, payload,"
                    " occurred_at, client_occurred_at, received_at, source_partition,"
                    " source_offset) VALUES (:g, :e, :p, 'score', '{}', :t, :t, :t, 0, :n)"
                ),
                {
                    "g": f"big-{tag}",
                    "e": event_id,
                    "p": f"p_{tag}-{n}",
                    "t": at + timedelta(n),
                    "n": n,
                },
            )
    return {
        "tag": tag,
        "game": f"big-{tag}",
        "ids": ids,
        "players": [f"p_{tag}-{n}" for n in range(3)],
    }


@pytest.fixture
def big(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every table counts as big (its size estimate is re-read on every request)."""
    monkeypatch.setattr(StrideModelView, "search_scan_rows", -1)
    monkeypatch.setattr(StrideModelView, "table_rows_ttl_s", 0.0)


@pytest.fixture
def statements(db_engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """(SQL, parameters) of what the application engine runs meanwhile."""
    seen: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, *_args) -> None:
        seen.append((statement, parameters))

    event.listen(db_engine, "before_cursor_execute", record)
    yield seen
    event.remove(db_engine, "before_cursor_execute", record)


def _players(page: str, tag: str) -> list[str]:
    return sorted(set(re.findall(rf">(p_{tag}-\d)<", page)))


def _plan(db_engine: Engine, statement: str, parameters: Any, *, setup: str = "") -> str:
    """EXPLAIN of one statement, with sequential scans and whole sorts priced out; ``setup``
    runs first in the same transaction, rolled back with it (ANALYZE's statistics too)."""
    with db_engine.connect() as conn:
        if setup:
            conn.exec_driver_sql(setup, parameters)
            conn.exec_driver_sql("ANALYZE processed_events")
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        conn.exec_driver_sql("SET LOCAL enable_sort = off")
        plan = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars().all()
        conn.rollback()
    return "\n".join(plan)


def test_a_big_table_is_searched_by_player_id_prefix_and_event_id(
    viewer: TestClient, rows: dict[str, Any], big: None
) -> None:
    tag = rows["tag"]
    by_prefix = viewer.get(LIST, params={"search": f"p_{tag}-"})
    assert sorted(_players(by_prefix.text, tag)) == rows["players"]
    by_event = viewer.get(LIST, params={"search": str(rows["ids"][1])})
    assert _players(by_event.text, tag) == [rows["players"][1]]
    by_game = viewer.get(LIST, params={"search": rows["game"]})
    assert len(_players(by_game.text, tag)) == 3
    # Not by the middle of an id (that would read the whole table), nor by a part of an
    # event id; and "_" is no wildcard.
    assert _players(viewer.get(LIST, params={"search": f"{tag}-1"}).text, tag) == []
    assert _players(viewer.get(LIST, params={"search": str(rows["ids"][1])[:8]}).text, tag) == []
    assert _players(viewer.get(LIST, params={"search": f"pX{tag}"}).text, tag) == []
    assert "player_id (or its beginning)" in by_prefix.text  # the search box says so


def test_a_small_table_keeps_the_substring_search(viewer: TestClient, rows: dict[str, Any]) -> None:
    tag = rows["tag"]
    page = viewer.get(LIST, params={"search": f"{tag}-1"})
    assert _players(page.text, tag) == [rows["players"][1]]


def test_the_search_statements_use_the_indexes(
    viewer: TestClient,
    rows: dict[str, Any],
    big: None,
    statements: list[tuple[str, Any]],
    db_engine: Engine,
) -> None:
    viewer.get(LIST, params={"search": str(rows["ids"][0])}).raise_for_status()
    viewer.get(LIST, params={"search": f"p_{rows['tag']}"}).raise_for_status()
    searches = [(s, p) for s, p in statements if "processed_events" in s and "WHERE" in s]
    assert searches
    for statement, parameters in searches:
        plan = _plan(db_engine, statement, parameters)
        assert "Seq Scan" not in plan, plan
    plans = "\n".join(_plan(db_engine, s, p) for s, p in searches)
    assert "ix_processed_events_event_id" in plans
    assert "ix_processed_events_player_game" in plans


def test_a_search_names_only_the_columns_that_match(
    viewer: TestClient,
    rows: dict[str, Any],
    big: None,
    statements: list[tuple[str, Any]],
    db_engine: Engine,
) -> None:
    """A game id is no player id prefix here: the list asks for the game id alone, a range
    of the primary key (an OR with the player id would read the index out of order)."""
    page = viewer.get(LIST, params={"search": rows["game"]})
    assert len(_players(page.text, rows["tag"])) == 3
    listed = [
        (s, p) for s, p in statements if s.lstrip().startswith("SELECT processed_events.game_id")
    ]
    assert listed
    for statement, parameters in listed:
        assert "LIKE" not in statement and "player_id =" not in statement, statement
        assert "pk_processed_events" in _plan(db_engine, statement, parameters)
    nothing = viewer.get(LIST, params={"search": f"none-{rows['tag']}"})
    assert _players(nothing.text, rows["tag"]) == []


def test_the_sort_by_occurred_at_and_its_next_page_use_the_index(
    viewer: TestClient, rows: dict[str, Any], statements: list[tuple[str, Any]], db_engine: Engine
) -> None:
    first = viewer.get(LIST, params={"sortBy": "occurred_at", "sort": "desc", "pageSize": 2})
    link = re.search(r'<a class="page-link" href="([^"#]+after=[^"#]+)">', first.text)
    assert link is not None
    viewer.get(link.group(1).replace("&amp;", "&")).raise_for_status()
    pages = [(s, p) for s, p in statements if "ORDER BY processed_events.occurred_at DESC" in s]
    assert len(pages) >= 2  # the first page and the one after its cursor
    for statement, parameters in pages:
        plan = _plan(db_engine, statement, parameters)
        assert "ix_processed_events_occurred_at" in plan, plan
        assert "Seq Scan" not in plan, plan


def test_indexed_search_reads_the_model_indexes() -> None:
    search = IndexedSearch.of(ProcessedEvent.__table__)
    assert {"game_id", "event_id", "occurred_at"} <= search.exact
    assert search.prefix == {"player_id"}
    assert like_prefix("a_b%c\\") == "a\\_b\\%c\\\\%"


def test_a_players_events_are_one_range_of_the_player_index(
    rows: dict[str, Any], db_engine: Engine
) -> None:
    """The "Events of this player" list (game and player equal) and the search by a player
    id's beginning share one index (migration 0024), led by the player id. Planned on a game
    with many players, as the list meets it (on a game of three rows, the planner's choice
    between this index and the primary key's game-led one depends on what other tests left
    in the table's statistics)."""
    many_players = """
        INSERT INTO processed_events (game_id, event_id, player_id, type, payload, occurred_at,
            client_occurred_at, received_at, source_partition, source_offset)
        SELECT %(g)s, gen_random_uuid(), 'many-' || i, 'score', '{}', now(), now(), now(), 0, i
        FROM generate_series(1, 20000) AS i"""
    plan = _plan(
        db_engine,
        "SELECT * FROM processed_events WHERE game_id = %(g)s AND player_id = %(p)s",
        {"g": rows["game"], "p": rows["players"][1]},
        setup=many_players,
    )
    assert "ix_processed_events_player_game" in plan, plan
    assert "Index Cond: (((player_id)::text = " in plan, plan
