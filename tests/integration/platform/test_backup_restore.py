"""pgBackRest on the stack's own cluster (WAL archived by `stride up postgres`): a
point-in-time restore into a fresh cluster holds exactly the rows committed by then, and
the live cluster is untouched. And a bronze Delta table restored to a version."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date

import psycopg
import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from cli import backup
from cli.main import app
from core.lake.bronze import BRONZE_GAME_EVENTS, append_bronze, table_uri
from core.platform.config import Settings, get_settings
from tests.lake_helpers import bronze_game_events

pytestmark = pytest.mark.integration


def _insert(conn: psycopg.Connection, table: str, ids: range) -> None:
    with conn.transaction():
        conn.execute(
            f"INSERT INTO {table} (id, note) SELECT i, 'row ' || i"
            " FROM generate_series(%s::int, %s::int) i",
            (ids.start, ids.stop - 1),
        )


@pytest.fixture
def pitr_table(postgres: Settings) -> Iterator[str]:
    """A scratch table of the superuser's, dropped afterwards: left behind, it would stop the
    session's read-only grants (the application role cannot grant on it)."""
    table = f"pitr_{uuid.uuid4().hex[:8]}"
    yield table
    with psycopg.connect(postgres.superuser_dsn + " dbname=stride", autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def test_point_in_time_restore_into_a_fresh_cluster(postgres: Settings, pitr_table: str) -> None:
    table = pitr_table
    dsn = postgres.superuser_dsn + " dbname=stride"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, note text NOT NULL)")
        _insert(conn, table, range(1, 101))
        result = CliRunner().invoke(app, ["backup", "create", "--type", "full"])
        assert result.exit_code == 0, result.output
        _insert(conn, table, range(101, 201))  # after the backup: replayed from the WAL
        row = conn.execute("SELECT clock_timestamp()").fetchone()
        assert row
        noted = row[0]
        _insert(conn, table, range(201, 301))  # after the noted time: must not come back
        conn.execute(f"UPDATE {table} SET note = 'changed' WHERE id <= 10")

    listed = CliRunner().invoke(app, ["backup", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)[-1]["type"] == "full"
    too_early = CliRunner().invoke(app, ["backup", "restore", "--to", "2000-01-01T00:00:00Z"])
    assert too_early.exit_code == 1
    assert "earliest restorable time" in " ".join(too_early.output.split())

    restored = backup.restore(
        postgres, target_time=noted, keep_running=True, report=lambda _m: None
    )
    try:
        assert not restored.data_dir.is_relative_to(backup.pg_data_dir(postgres))
        dsn_copy = backup.restored_dsn(postgres, restored.port) + " dbname=stride"
        with psycopg.connect(dsn_copy) as copy:
            rows = copy.execute(f"SELECT id, note FROM {table} ORDER BY id").fetchall()
            assert copy.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    finally:
        backup.stop_restored(restored.pid)
    assert rows == [(i, f"row {i}") for i in range(1, 201)]

    with psycopg.connect(dsn) as live:  # the live cluster kept everything
        count = live.execute(f"SELECT count(*), min(note) FROM {table}").fetchone()
        assert count == (300, "changed")


def test_a_bronze_table_restored_to_a_version(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STRIDE_LAKE_DIR", str(tmp_path / "lake"))
    get_settings.cache_clear()
    root = get_settings().lake_root
    day = date(2026, 11, 20)
    append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(0, 50, day, "tri"))  # version 0
    append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(50, 50, day, "tri"))  # version 1
    good = DeltaTable(table_uri(root, BRONZE_GAME_EVENTS)).to_pyarrow_table()
    append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(1000, 7, day, "tri"))  # a bad day

    try:
        result = CliRunner().invoke(
            app, ["backup", "lake-restore", BRONZE_GAME_EVENTS, "--version", "1"]
        )
    finally:
        monkeypatch.delenv("STRIDE_LAKE_DIR")
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "version 2 -> restored as version 3" in result.output
    table = DeltaTable(table_uri(root, BRONZE_GAME_EVENTS))
    assert table.version() == 3  # a new commit: the bad version stays in the history
    restored = table.to_pyarrow_table()
    key = ["event_id"]
    assert restored.sort_by([(k, "ascending") for k in key]).equals(
        good.sort_by([(k, "ascending") for k in key])
    )
    assert (
        DeltaTable(table_uri(root, BRONZE_GAME_EVENTS), version=2).to_pyarrow_table().num_rows
        == 107
    )


def test_replace_live_swaps_the_restored_data_in_and_keeps_the_old() -> None:
    """On a private cluster of its own: the live data folder is only replaced when asked,
    with postgres stopped, and the old folder stays beside it."""
    import os
    import shutil

    from cli.services import SERVICES, isolated_stack_env
    from cli.stack import Stack, StackError

    state, env = isolated_stack_env("stride-test-replace-")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    settings = get_settings()
    stack = Stack(settings, SERVICES)
    try:
        stack.up(["postgres"], report=lambda _m: None)
        dsn = settings.superuser_dsn + " dbname=stride"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (id int)")
            conn.execute("INSERT INTO kept VALUES (1)")
            backup.create_backup(settings)
            conn.execute("INSERT INTO kept VALUES (2)")
            (noted,) = conn.execute("SELECT clock_timestamp()").fetchone() or (None,)
            conn.execute("DROP TABLE kept")  # the mistake to undo
        restored = backup.restore(settings, target_time=noted, report=lambda _m: None)
        with pytest.raises(StackError, match="postgres is running"):
            backup.replace_live(settings, restored.data_dir, report=lambda _m: None)
        stack.down(["postgres"], report=lambda _m: None)
        aside = backup.replace_live(settings, restored.data_dir, report=lambda _m: None)
        assert (aside / "PG_VERSION").exists()
        stack.up(["postgres"], report=lambda _m: None)
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT id FROM kept ORDER BY id").fetchall() == [(1,), (2,)]
    finally:
        stack.down(report=lambda _m: None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        shutil.rmtree(state, ignore_errors=True)
