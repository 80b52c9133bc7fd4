"""Admin list pages of ``processed_events`` at 10 million rows, through the real API.

Starts a private PostgreSQL (the same supervisor and service declaration as ``stride up``)
in a temporary folder on a free port, fills ``processed_events`` with ``generate_series``
(indexes dropped during the load and rebuilt after it, then ``VACUUM ANALYZE``), signs in
an editor and times the list pages operations staff open, each ``--repeat`` times:

* the first page; the next page (the page's own "next" link); page 40,001 by number
  (``OFFSET`` 1,000,000); the page after a cursor 1,000,000 rows deep (when the checkout
  pages by cursor);
* a filter on an indexed column (``game_id`` equals), a search, a sort by an unindexed
  column (``occurred_at``).

``--code DIR`` (repeatable) measures the API of another checkout against the same data, e.g.
the code before a change: ``git archive main | tar -x -C /tmp/stride-main``.
Prints the figures and writes ``bench/results/admin_list_pages.json``.

    .venv/bin/python -m bench.admin_list_pages [--rows 10000000] [--repeat 3] [--code DIR]
"""

from __future__ import annotations

import argparse
import html
import re
import time
from pathlib import Path

import httpx

from bench.admin_api import (
    add_code_option,
    api_process,
    create_admin,
    machine,
    measure_each,
    private_database,
    signed_in,
    write_results,
)

RESULTS = Path(__file__).resolve().parent / "results" / "admin_list_pages.json"
LIST = "/admin/processed-event/list"
CHUNK = 1_000_000
DEEP = 1_000_000
TIMEOUT_WORDS = ("took longer than", "was stopped")

FILL = """
INSERT INTO processed_events (event_id, game_id, player_id, type, payload, occurred_at,
    client_occurred_at, sent_at, received_at, processed_at, source_partition, source_offset)
SELECT gen_random_uuid(), 'game-' || (i % 20), 'player-' || (i % 200000),
    (ARRAY['match_result', 'score', 'purchase', 'achievement', 'session_start'])[1 + i % 5],
    jsonb_build_object('score', i % 1000, 'level', i % 37),
    at, at, at, at + interval '1 second', at + interval '2 seconds', i % 4, i
FROM (SELECT i, timestamptz '2026-01-01' + i * interval '1 second' AS at
      FROM generate_series(:start, :stop) AS i) AS s
"""


def load(rows: int) -> float:
    """Fill processed_events; returns the seconds it took."""
    import psycopg
    from sqlalchemy import text

    from core.platform.config import get_settings
    from core.platform.db import get_engine

    engine = get_engine()
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        constraints = conn.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = 'processed_events'::regclass AND contype IN ('p', 'u')"
            )
        ).all()
        indexes = conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'processed_events'"
                " AND indexname NOT IN (SELECT conname FROM pg_constraint"
                "  WHERE conrelid = 'processed_events'::regclass)"
            )
        ).all()
        for name, _ in indexes:
            conn.execute(text(f'DROP INDEX "{name}"'))
        for name, _ in constraints:
            conn.execute(text(f'ALTER TABLE processed_events DROP CONSTRAINT "{name}"'))
        for start in range(1, rows + 1, CHUNK):
            stop = min(rows, start + CHUNK - 1)
            conn.execute(text(FILL), {"start": start, "stop": stop})
            print(f"  {stop:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
        for name, definition in constraints:
            conn.execute(text(f'ALTER TABLE processed_events ADD CONSTRAINT "{name}" {definition}'))
        for _, definition in indexes:
            conn.execute(text(definition))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) processed_events"))
    # Flush the bulk load now, so its writes do not land in the middle of the timings.
    with psycopg.connect(get_settings().superuser_dsn + " dbname=stride", autocommit=True) as su:
        su.execute("CHECKPOINT")
    return time.perf_counter() - started


def deep_event_id(rows: int) -> str:
    from sqlalchemy import text

    from core.platform.db import get_engine

    with get_engine().connect() as conn:
        return str(
            conn.execute(
                text(
                    "SELECT event_id FROM processed_events ORDER BY event_id DESC OFFSET :n LIMIT 1"
                ),
                {"n": min(DEEP, rows // 2)},
            ).scalar_one()
        )


def next_link(page: str) -> str | None:
    """The href of the list page's "next" pagination link."""
    for href, label in re.findall(r'<a class="page-link" href="([^"#]+)">(.*?)</a>', page, re.S):
        if "next" in label:
            return html.unescape(href)
    return None


def deep_cursor_url(first_page: str, event_id: str) -> str | None:
    """The "next" link of the first page, moved to start after ``event_id`` (cursor paging)."""
    link = next_link(first_page)
    if link is None or "after=" not in link:
        return None
    from api.admin.listing import Cursor  # this checkout's cursor format

    token = Cursor(values=(event_id,), query=Cursor.decode(_param(link, "after")).query).encode()
    return re.sub(r"after=[^&]+", f"after={token}", link)


def _param(url: str, name: str) -> str:
    return httpx.URL(url).params[name]


def timed_page(client: httpx.Client, url: str, repeat: int) -> dict[str, object]:
    samples, statuses, stopped = [], set(), False
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        samples.append(time.perf_counter() - started)
        statuses.add(response.status_code)
        stopped = stopped or any(w in response.text for w in TIMEOUT_WORDS)
    samples.sort()
    return {
        "url": url,
        "n": repeat,
        "p50_ms": round(samples[len(samples) // 2] * 1000, 1),
        "max_ms": round(samples[-1] * 1000, 1),
        "status": sorted(statuses),
        "stopped_by_timeout": stopped,
    }


def measure(code: Path, username: str, repeat: int, event_id: str) -> dict[str, object]:
    figures: dict[str, object] = {}
    with api_process(code) as (url, _pid), signed_in(url, username) as client:
        first = client.get(LIST)
        first.raise_for_status()
        scenarios: dict[str, str | None] = {
            "first_page": LIST,
            "next_page": next_link(first.text),
            "page_40001_by_number": f"{LIST}?page=40001",
            "page_after_cursor_1m_deep": deep_cursor_url(first.text, event_id),
            "filter_game_id_equals": f"{LIST}?game_id=game-7&game_id_op=equals",
            "search_player": f"{LIST}?search=player-123456",
            "sort_by_occurred_at": f"{LIST}?sortBy=occurred_at&sort=desc",
        }
        for name, page in scenarios.items():
            if page is None:
                continue
            figures[name] = timed_page(client, page, repeat)
            print(f"  {name:<28} {figures[name]}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    add_code_option(parser)
    args = parser.parse_args()
    load_before = machine()["load_average"]
    with private_database():
        print(f"loading {args.rows:,} processed_events ...", flush=True)
        load_s = load(args.rows)
        print(f"loaded in {load_s:.0f} s", flush=True)
        create_admin("bench-editor", "editor")
        event_id = deep_event_id(args.rows)
        results = measure_each(
            args.code, lambda code: measure(code, "bench-editor", args.repeat, event_id)
        )
    write_results(
        RESULTS,
        "admin_list_pages",
        load_average_before=load_before,
        rows=args.rows,
        load_s=round(load_s, 1),
        results=results,
    )


if __name__ == "__main__":
    main()
