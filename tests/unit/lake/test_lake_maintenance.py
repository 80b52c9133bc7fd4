"""Bronze maintenance on a real Delta table: the rows stay, the small files go."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from core.lake.bronze import (
    BRONZE_GAME_EVENTS,
    BRONZE_LOG_RETENTION,
    GAME_EVENTS_SCHEMA,
    MaintenanceReport,
    append_bronze,
    days_appended_since,
    days_written_since,
    maintain_bronze,
    table_uri,
)
from dagster_project.maintenance import bronze_maintenance_job, hourly_bronze_maintenance
from dagster_project.resources import Lake
from tests.lake_helpers import bronze_game_events

DAYS = (date(2026, 11, 20), date(2026, 11, 21))
GAMES = ("tri", "duo")


def small_appends(root: str, commits: int) -> None:
    """As the sink does: one small commit at a time, each into one (day, game) partition."""
    for i in range(commits):
        rows = bronze_game_events(i * 10, 10, DAYS[i % 2], GAMES[(i // 2) % 2])
        append_bronze(root, BRONZE_GAME_EVENTS, rows)


def rows_of(root: str) -> list[tuple]:
    table = DeltaTable(table_uri(root, BRONZE_GAME_EVENTS)).to_pyarrow_table()
    return sorted(
        (r["event_id"], r["kafka_offset"], r["game_id"], r["date"]) for r in table.to_pylist()
    )


def live_files(root: str) -> list[str]:
    return DeltaTable(table_uri(root, BRONZE_GAME_EVENTS)).file_uris()


def parquet_on_disk(root: str) -> set[Path]:
    return set(Path(table_uri(root, BRONZE_GAME_EVENTS)).rglob("*.parquet")) - set(
        Path(table_uri(root, BRONZE_GAME_EVENTS), "_delta_log").glob("*")
    )


def test_maintenance_keeps_the_rows_in_fewer_files_and_checkpoints(tmp_path: Path) -> None:
    root = str(tmp_path)
    small_appends(root, 24)
    before = rows_of(root)
    assert len(before) == 240
    assert len(live_files(root)) == 24

    report = maintain_bronze(root, BRONZE_GAME_EVENTS)

    assert rows_of(root) == before
    assert len(live_files(root)) == 4  # one file per (day, game) partition
    assert (report.files_before, report.files_after) == (24, 4)
    assert (report.files_compacted, report.files_written) == (24, 4)
    assert report.version_before == 23
    assert report.checkpoint_version == 24  # the compaction's commit
    assert report.bytes_after < report.bytes_before
    log = Path(table_uri(root, BRONZE_GAME_EVENTS), "_delta_log")
    assert (log / f"{report.checkpoint_version:020d}.checkpoint.parquet").exists()
    assert '"version":24' in (log / "_last_checkpoint").read_text().replace(" ", "")
    # Removed files stay on disk for readers of older versions (7 days by default).
    assert report.files_vacuumed == 0
    assert len(parquet_on_disk(root)) == 28
    assert len(DeltaTable(table_uri(root, BRONZE_GAME_EVENTS), version=23).file_uris()) == 24

    append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(10_000, 5, DAYS[0], "tri"))
    assert rows_of(root) == sorted(
        [*before, *[(str(uuid.UUID(int=10_000 + i)), 10_000 + i, "tri", DAYS[0]) for i in range(5)]]
    )


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    root = str(tmp_path)
    small_appends(root, 8)
    first = maintain_bronze(root, BRONZE_GAME_EVENTS)
    rows, files = rows_of(root), sorted(live_files(root))

    second = maintain_bronze(root, BRONZE_GAME_EVENTS)

    assert (second.files_compacted, second.files_written, second.files_vacuumed) == (0, 0, 0)
    assert second.files_before == second.files_after == first.files_after
    assert rows_of(root) == rows
    assert sorted(live_files(root)) == files


def test_partition_filters_compact_only_the_days_asked_for(tmp_path: Path) -> None:
    root = str(tmp_path)
    small_appends(root, 12)
    before = rows_of(root)

    report = maintain_bronze(
        root, BRONZE_GAME_EVENTS, partition_filters=[("date", "<", DAYS[1].isoformat())]
    )

    assert rows_of(root) == before
    assert (report.files_compacted, report.files_written) == (6, 2)
    day_two = [f for f in live_files(root) if f"date={DAYS[1].isoformat()}" in f]
    assert len(day_two) == 6


def test_an_append_between_the_compactions_read_and_commit_is_kept(tmp_path: Path) -> None:
    """The sink appends while maintenance compacts the same partition: delta-rs commits the
    compaction over the blind append (no conflict), and no row is lost or doubled."""
    root = str(tmp_path)
    for i in range(6):
        append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(i * 10, 10, DAYS[0], "tri"))
    compaction_view = DeltaTable(table_uri(root, BRONZE_GAME_EVENTS))  # read at version 5
    late = bronze_game_events(5_000, 7, DAYS[0], "tri")
    append_bronze(root, BRONZE_GAME_EVENTS, late)  # version 6, same partition

    metrics = compaction_view.optimize.compact()

    expected = sorted(
        [*((r["event_id"], r["kafka_offset"], r["game_id"], r["date"]) for r in late.to_pylist())]
        + [(e, o, g, d) for e, o, g, d in rows_of_version(root, 5)]
    )
    assert metrics["numFilesRemoved"] == 6  # the six it read, not the late file
    assert rows_of(root) == expected
    history = DeltaTable(table_uri(root, BRONZE_GAME_EVENTS)).history(1)[0]
    assert (history["operation"], history["readVersion"], history["version"]) == ("OPTIMIZE", 5, 7)
    report = maintain_bronze(root, BRONZE_GAME_EVENTS)  # the late file joins its partition
    assert rows_of(root) == expected
    assert (report.files_compacted, report.files_after) == (2, 1)


def rows_of_version(root: str, version: int) -> list[tuple]:
    table = DeltaTable(table_uri(root, BRONZE_GAME_EVENTS), version=version).to_pyarrow_table()
    return [(r["event_id"], r["kafka_offset"], r["game_id"], r["date"]) for r in table.to_pylist()]


def test_vacuum_deletes_removed_files_only_after_the_retention(tmp_path: Path) -> None:
    root = str(tmp_path)
    small_appends(root, 6)  # two partitions get two files each
    rows, on_disk = rows_of(root), parquet_on_disk(root)
    with pytest.raises(DeltaError, match="Invalid retention period"):
        maintain_bronze(root, BRONZE_GAME_EVENTS, vacuum_retention_hours=1)  # table keeps 7 days
    assert parquet_on_disk(root) > on_disk  # compacted, nothing deleted
    assert rows_of(root) == rows

    dt = DeltaTable(table_uri(root, BRONZE_GAME_EVENTS))
    dt.alter.set_table_properties({"delta.deletedFileRetentionDuration": "interval 0 hours"})
    report = maintain_bronze(root, BRONZE_GAME_EVENTS, vacuum_retention_hours=0)

    assert report.files_vacuumed == 4
    assert {p.as_posix() for p in parquet_on_disk(root)} == {
        Path(f).as_posix() for f in live_files(root)
    }
    assert rows_of(root) == rows


def test_a_missing_or_empty_table_is_reported_not_an_error(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert maintain_bronze(root, BRONZE_GAME_EVENTS) == MaintenanceReport(
        table=BRONZE_GAME_EVENTS, exists=False
    )

    write_deltalake(
        table_uri(root, BRONZE_GAME_EVENTS),
        GAME_EVENTS_SCHEMA.empty_table(),
        partition_by=["date", "game_id"],
    )
    report = maintain_bronze(root, BRONZE_GAME_EVENTS)
    assert report.exists
    assert (report.files_before, report.files_after, report.files_compacted) == (0, 0, 0)
    assert rows_of(root) == []


def test_the_job_reports_each_table_in_dagster(tmp_path: Path) -> None:
    root = str(tmp_path)
    small_appends(root, 8)
    with dg.instance_for_test() as instance:
        result = bronze_maintenance_job.execute_in_process(
            resources={"lake": Lake(root=root)}, instance=instance
        )
        assert result.success
        steps = result.get_step_success_events()  # every table, the missing ones included
        assert len(steps) == 3
        observed = [
            e.asset_observation_data.asset_observation
            for e in result.all_events
            if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
        ]
        assert [o.asset_key.to_user_string() for o in observed] == ["bronze_game_events"]
        metadata = observed[0].metadata
        assert (metadata["files_before"].value, metadata["files_after"].value) == (8, 4)
        assert len(live_files(root)) == 4


def test_the_schedule_skips_while_a_run_is_unfinished() -> None:
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance)
        assert isinstance(hourly_bronze_maintenance(context), dg.RunRequest)
        instance.create_run_for_job(bronze_maintenance_job, status=dg.DagsterRunStatus.STARTED)
        assert isinstance(hourly_bronze_maintenance(context), dg.SkipReason)


def test_definitions_load_with_the_maintenance_job_and_schedule() -> None:
    from dagster_project.definitions import defs

    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("bronze_maintenance").executor_def == dg.in_process_executor
    assert defs.resolve_schedule_def("hourly_bronze_maintenance").cron_schedule == "45 * * * *"
    spark_job = defs.resolve_job_def("silver_gold_maintenance")
    assert spark_job.executor_def == dg.in_process_executor
    assert sorted(spark_job.graph.node_dict) == [
        "maintain_gold_game_daily",
        "maintain_gold_user_daily_health",
        "maintain_silver_game_events",
        "maintain_silver_reward_commands",
        "maintain_silver_wearable_samples",
    ]
    assert sorted(defs.resolve_job_def("bronze_maintenance").graph.node_dict) == [
        "maintain_bronze_game_events",
        "maintain_bronze_reward_commands",
        "maintain_bronze_wearable_samples",
    ]
    assert defs.resolve_schedule_def("nightly_silver_gold_maintenance").cron_schedule == (
        "15 3 * * *"  # after the 01:30 daily run
    )


def test_the_nightly_schedule_skips_while_a_lakehouse_run_is_unfinished() -> None:
    """Spark's OPTIMIZE and a rebuild of the same day conflict: one of them would fail."""
    from dagster_project.definitions import lakehouse_job
    from dagster_project.maintenance import (
        nightly_silver_gold_maintenance,
        silver_gold_maintenance_job,
    )

    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance)
        assert isinstance(nightly_silver_gold_maintenance(context), dg.RunRequest)
        daily = instance.create_run_for_job(
            lakehouse_job.resolve(asset_graph=_asset_graph()), status=dg.DagsterRunStatus.STARTED
        )
        skip = nightly_silver_gold_maintenance(context)
        assert isinstance(skip, dg.SkipReason) and daily.run_id in str(skip.skip_message)
        instance.report_run_canceled(daily)
        assert isinstance(nightly_silver_gold_maintenance(context), dg.RunRequest)
        instance.create_run_for_job(silver_gold_maintenance_job, status=dg.DagsterRunStatus.STARTED)
        assert isinstance(nightly_silver_gold_maintenance(context), dg.SkipReason)


def _asset_graph():  # type: ignore[no-untyped-def]
    from dagster_project.definitions import defs

    return defs.resolve_asset_graph()


def test_compaction_alone_is_no_new_day_for_the_sensor(tmp_path: Path) -> None:
    root = str(tmp_path)
    small_appends(root, 8)
    version, _ = days_appended_since(root, BRONZE_GAME_EVENTS, -1)
    report = maintain_bronze(root, BRONZE_GAME_EVENTS)
    assert report.files_compacted == 8
    assert days_written_since(root, BRONZE_GAME_EVENTS, version)[1] == set(DAYS)  # new files
    assert days_appended_since(root, BRONZE_GAME_EVENTS, version) == (version + 1, set())

    append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(9_000, 3, DAYS[1], "tri"))
    maintain_bronze(root, BRONZE_GAME_EVENTS)  # the new file joins its day's file
    assert days_appended_since(root, BRONZE_GAME_EVENTS, version) == (version + 3, {DAYS[1]})


@pytest.fixture
def lake_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The lake of settings pointed at a temporary state folder (what the sensor reads)."""
    from core.platform.config import get_settings

    monkeypatch.setenv("STRIDE_STATE_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        yield get_settings().lake_root
    finally:
        get_settings.cache_clear()


def test_the_sensor_starts_no_run_for_a_compacted_day(lake_root: str) -> None:
    from dagster_project.definitions import new_bronze_data

    root = lake_root
    small_appends(root, 8)
    first = new_bronze_data(dg.build_sensor_context(cursor=None))
    assert [r.partition_key for r in first.run_requests] == [d.isoformat() for d in DAYS]
    maintain_bronze(root, BRONZE_GAME_EVENTS)
    after = new_bronze_data(dg.build_sensor_context(cursor=first.cursor))
    assert after.run_requests == []


def log_dir(root: str) -> Path:
    return Path(table_uri(root, BRONZE_GAME_EVENTS), "_delta_log")


def age_the_log(root: str, hours: float) -> None:
    """Make every ``_delta_log`` file ``hours`` old: delta-rs expires log files by mtime."""
    then = time.time() - hours * 3600
    for path in log_dir(root).iterdir():
        os.utime(path, (then, then))


def table_properties(root: str) -> dict[str, str]:
    return DeltaTable(table_uri(root, BRONZE_GAME_EVENTS)).metadata().configuration


def test_bronze_tables_are_created_with_a_short_log_retention(tmp_path: Path) -> None:
    root = str(tmp_path)
    append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(0, 3, DAYS[0], "tri"))
    properties = table_properties(root)
    assert properties["delta.logRetentionDuration"] == BRONZE_LOG_RETENTION == "interval 2 hours"
    assert "delta.deletedFileRetentionDuration" not in properties  # Delta's week stays


def test_maintenance_gives_an_older_table_the_log_retention(tmp_path: Path) -> None:
    root = str(tmp_path)
    write_deltalake(
        table_uri(root, BRONZE_GAME_EVENTS),
        bronze_game_events(0, 10, DAYS[0], "tri"),
        mode="append",
        partition_by=["date", "game_id"],
    )
    assert "delta.logRetentionDuration" not in table_properties(root)

    report = maintain_bronze(root, BRONZE_GAME_EVENTS)

    assert table_properties(root)["delta.logRetentionDuration"] == BRONZE_LOG_RETENTION
    assert report.version_before == 1  # the property's own commit
    assert len(rows_of(root)) == 10
    again = maintain_bronze(root, BRONZE_GAME_EVENTS)
    assert again.version_after == report.version_after  # set once, not every hour


def test_maintenance_keeps_the_log_short_and_every_row(tmp_path: Path) -> None:
    root = str(tmp_path)
    small_appends(root, 250)  # delta-rs checkpoints every 100 commits by itself
    rows = rows_of(root)
    assert len(rows) == 2_500
    assert len(list(log_dir(root).glob("*.json"))) == 250  # nothing expired yet
    maintain_bronze(root, BRONZE_GAME_EVENTS)
    assert len(list(log_dir(root).glob("*.json"))) == 251  # still within the retention

    age_the_log(root, hours=3)  # older than the 2 hours
    report = maintain_bronze(root, BRONZE_GAME_EVENTS)

    log = sorted(p.name for p in log_dir(root).iterdir())
    assert log == [
        f"{report.checkpoint_version:020d}.checkpoint.parquet",
        f"{report.checkpoint_version:020d}.json",
        "_last_checkpoint",
    ]
    assert rows_of(root) == rows
    with pytest.raises(DeltaError):
        DeltaTable(table_uri(root, BRONZE_GAME_EVENTS), version=report.checkpoint_version - 1)
    append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(90_000, 5, DAYS[0], "tri"))
    assert len(rows_of(root)) == 2_505


def test_files_removed_before_the_log_cleanup_are_still_vacuumed(tmp_path: Path) -> None:
    """The checkpoint carries the compaction's tombstones for the file retention (a week),
    so dropping the log entries that removed the files does not orphan them."""
    root = str(tmp_path)
    small_appends(root, 8)
    maintain_bronze(root, BRONZE_GAME_EVENTS)  # version 8: 8 files → 4, the 8 stay on disk
    age_the_log(root, hours=3)
    append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(7_000, 3, date(2026, 11, 19), "tri"))
    maintain_bronze(root, BRONZE_GAME_EVENTS)  # checkpoints version 9, drops 0 … 8
    assert not (log_dir(root) / f"{8:020d}.json").exists()
    assert len(parquet_on_disk(root)) == 13

    dt = DeltaTable(table_uri(root, BRONZE_GAME_EVENTS))
    dt.alter.set_table_properties({"delta.deletedFileRetentionDuration": "interval 0 hours"})
    report = maintain_bronze(root, BRONZE_GAME_EVENTS, vacuum_retention_hours=0)

    assert report.files_vacuumed == 8
    assert len(parquet_on_disk(root)) == 5


def test_a_cursor_older_than_the_log_counts_every_day(tmp_path: Path) -> None:
    """The sensor was stopped longer than the log retention: the days appended in the
    cleaned-up part of the log cannot be told apart, so every day counts; none is missed."""
    root = str(tmp_path)
    small_appends(root, 4)
    cursor, _ = days_appended_since(root, BRONZE_GAME_EVENTS, -1)
    late_day = date(2026, 11, 19)
    append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(7_000, 3, late_day, "tri"))
    maintain_bronze(root, BRONZE_GAME_EVENTS)
    age_the_log(root, hours=3)
    maintain_bronze(root, BRONZE_GAME_EVENTS)
    with pytest.raises(DeltaError):
        DeltaTable(table_uri(root, BRONZE_GAME_EVENTS), version=cursor)

    current = DeltaTable(table_uri(root, BRONZE_GAME_EVENTS)).version()
    assert days_appended_since(root, BRONZE_GAME_EVENTS, cursor) == (
        current,
        {late_day, *DAYS},
    )
    assert days_written_since(root, BRONZE_GAME_EVENTS, cursor) == (current, {late_day, *DAYS})
    assert days_appended_since(root, BRONZE_GAME_EVENTS, current) == (current, set())


def test_the_sensor_catches_up_after_the_log_of_its_cursor_was_cleaned_up(lake_root: str) -> None:
    from dagster_project.definitions import new_bronze_data

    root = lake_root
    small_appends(root, 4)
    first = new_bronze_data(dg.build_sensor_context(cursor=None))
    append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(7_000, 3, date(2026, 11, 19), "tri"))
    age_the_log(root, hours=3)
    maintain_bronze(root, BRONZE_GAME_EVENTS)

    after = new_bronze_data(dg.build_sensor_context(cursor=first.cursor))

    assert [r.partition_key for r in after.run_requests] == [
        "2026-11-19",
        *(d.isoformat() for d in DAYS),
    ]
    again = new_bronze_data(dg.build_sensor_context(cursor=after.cursor))
    assert again.run_requests == []
