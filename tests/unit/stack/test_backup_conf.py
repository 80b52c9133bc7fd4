"""pgBackRest's configuration of the local cluster, the archive options, the choice of the
backup a point-in-time restore starts from, and the CLI's time parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer

from cli import backup
from cli.backup_cmd import parse_time
from cli.stack import StackError
from core.platform.config import Settings


def test_the_config_points_at_the_cluster_and_the_repository(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, pg_port=5999, backup_repo_dir=tmp_path / "repo")
    conf = backup.pgbackrest_config(settings)
    lines = set(conf.splitlines())
    assert f"repo1-path={tmp_path / 'repo'}" in lines
    assert "repo1-retention-full=2" in lines
    assert "[stride]" in lines and "pg1-port=5999" in lines
    assert f"pg1-path={backup.pg_data_dir(settings)}" in lines
    assert f"pg1-socket-path={backup.socket_dir(settings)}" in lines


@pytest.mark.skipif(backup.pgbackrest_binary() is None, reason="pgbackrest not installed")
def test_the_cluster_archives_its_wal_to_the_stanza(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, backup_archive_timeout_s=30)
    options = backup.postgres_archive_options(settings)
    pairs = dict(o.split("=", 1) for o in options[1::2])
    assert pairs["archive_mode"] == "on"
    assert pairs["archive_timeout"] == "30"
    assert pairs["archive_command"].endswith("--stanza=stride archive-push %p")
    assert f"--config={backup.config_path(settings)}" in pairs["archive_command"]


def _backup(label: str, stopped: str) -> dict[str, str]:
    return {"label": label, "stopped": stopped}


def test_a_restore_starts_from_the_latest_backup_that_ended_by_the_target() -> None:
    backups = [
        _backup("F1", "2026-12-01T10:00:00+00:00"),
        _backup("F2", "2026-12-01T12:00:00+00:00"),
        _backup("F3", "2026-12-01T14:00:05+00:00"),
    ]
    at = datetime(2026, 12, 1, 14, 0, 5, 300_000, tzinfo=UTC)  # in F3's last second
    assert backup.backup_before(backups, at) == "F3"
    assert backup.backup_before(backups, datetime(2026, 12, 1, 13, tzinfo=UTC)) == "F2"
    with pytest.raises(StackError, match="earliest restorable time is 2026-12-01T10:00"):
        backup.backup_before(backups, datetime(2026, 12, 1, 9, tzinfo=UTC))
    with pytest.raises(StackError, match="no backup yet"):
        backup.backup_before([], at)


def test_restore_times_are_iso_8601_and_utc_without_a_zone() -> None:
    assert parse_time("2026-12-01T14:05:00") == datetime(2026, 12, 1, 14, 5, tzinfo=UTC)
    assert parse_time("2026-12-01T14:05:00Z") == datetime(2026, 12, 1, 14, 5, tzinfo=UTC)
    with pytest.raises(typer.BadParameter, match="not an ISO 8601 time"):
        parse_time("yesterday")
