"""Admin list, search and sort of ``processed_events`` at 10 million rows, before and after
migration 0012 (its indexes) and the indexed search of big tables, through the real API.

A private PostgreSQL (as ``bench.admin_list_pages``) is migrated to ``0011``, filled, and the
API of ``--before`` (a checkout of the code before the change; by default ``git archive
main`` into a temporary folder) is timed; then ``stride db upgrade`` builds 0012's indexes
(``CREATE INDEX CONCURRENTLY``, timed) and this checkout's API is timed against the same
rows. Each page is fetched ``--repeat`` times over HTTP by a signed-in editor:

* the first page; a search by a whole player id, by the beginning of one (and by one that
  half the rows start with), by a game id, by an event id;
* a sort by ``occurred_at`` (newest first) and the page after it (its "next" link).

What the indexes cost the writers: after each measurement ``--insert`` more rows are added
in batches of 4,000 (the scoring agent's largest transaction), timed, with the indexes of
the moment.

Prints the figures and writes ``bench/results/admin_lists.json``.

    .venv/bin/python -m bench.admin_lists [--rows 10000000] [--repeat 3] [--before DIR]
                                          [--insert 200000]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from bench.admin_api import (
    REPO,
    api_process,
    create_admin,
    machine,
    private_database,
    signed_in,
    write_results,
)
from bench.admin_list_pages import FILL, LIST, deep_event_id, load, next_link, timed_page

RESULTS = Path(__file__).resolve().parent / "results" / "admin_lists.json"


def migrate(revision: str) -> float:
    """Upgrade or downgrade the private database to ``revision``; the seconds it took."""
    from alembic import command

    from core.platform.config import get_settings
    from core.platform.migrate import alembic_config

    config = alembic_config(get_settings())
    started = time.perf_counter()
    if revision == "0011":
        command.downgrade(config, revision)
    else:
        command.upgrade(config, revision)
    return time.perf_counter() - started


BATCH = 4_000


def insert_rows(first: int, rows: int) -> dict[str, float]:
    """Add ``rows`` rows numbered from ``first``, a transaction per ``BATCH``; the rate."""
    from sqlalchemy import text

    from core.platform.db import get_engine

    started = time.perf_counter()
    for start in range(first, first + rows, BATCH):
        with get_engine().begin() as conn:
            conn.execute(text(FILL), {"start": start, "stop": start + BATCH - 1})
    seconds = time.perf_counter() - started
    figures = {"rows": rows, "s": round(seconds, 1), "rows_per_s": round(rows / seconds)}
    print(f"  insert {figures}", flush=True)
    return figures


def measure(code: Path, username: str, repeat: int, event_id: str) -> dict[str, object]:
    figures: dict[str, object] = {}
    with api_process(code) as (url, _pid), signed_in(url, username) as client:
        client.get(LIST).raise_for_status()  # plans, caches, the table's size estimate
        scenarios: dict[str, str | None] = {
            "first_page": LIST,
            "search_player_id": f"{LIST}?search=player-123456",
            "search_player_id_prefix": f"{LIST}?search=player-12345",
            "search_short_prefix_half_the_table": f"{LIST}?search=player-1",
            "search_game_id": f"{LIST}?search=game-7",
            "search_event_id": f"{LIST}?search={event_id}",
            "sort_by_occurred_at": f"{LIST}?sortBy=occurred_at&sort=desc",
        }
        sorted_page = client.get(scenarios["sort_by_occurred_at"] or LIST)
        scenarios["sort_by_occurred_at_next_page"] = next_link(sorted_page.text)
        for name, page in scenarios.items():
            if page is None:
                continue
            figures[name] = timed_page(client, page, repeat)
            print(f"  {name:<32} {figures[name]}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, help="checkout of the code before (default: main)")
    parser.add_argument("--insert", type=int, default=200_000, help="rows added to time writes")
    args = parser.parse_args()
    load_before = machine()["load_average"]
    with tempfile.TemporaryDirectory(prefix="stride-before-") as folder, private_database():
        before = args.before
        if before is None:
            before = Path(folder)
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", "main"], check=True, capture_output=True
            )
            subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
        migrate("0011")
        print(f"loading {args.rows:,} processed_events ...", flush=True)
        load_s = load(args.rows)
        print(f"loaded in {load_s:.0f} s", flush=True)
        create_admin("bench-editor", "editor")
        event_id = deep_event_id(args.rows)
        print(f"before ({before}, schema 0011):", flush=True)
        results: dict[str, object] = {
            "before": measure(before.resolve(), "bench-editor", args.repeat, event_id)
        }
        inserts = {"before": insert_rows(args.rows + 1, args.insert)}
        print("stride db upgrade: 0012 builds its indexes ...", flush=True)
        upgrade_s = migrate("head")
        print(f"  {upgrade_s:.0f} s", flush=True)
        print("after (this checkout, schema 0012):", flush=True)
        results["after"] = measure(REPO, "bench-editor", args.repeat, event_id)
        inserts["after"] = insert_rows(args.rows + args.insert + 1, args.insert)
    write_results(
        RESULTS,
        "admin_lists",
        load_average_before=load_before,
        rows=args.rows,
        load_s=round(load_s, 1),
        migration_0012_s=round(upgrade_s, 1),
        results=results,
        inserts_in_batches_of_4000=inserts,
    )


if __name__ == "__main__":
    main()
