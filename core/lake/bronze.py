"""The Delta lake's layout and its bronze tables: schemas, rows from messages, appends.

Bronze keeps every consumed message as a row (duplicates included: silver dedupes by
sample / event id), partitioned by the day and the source (wearable vendor, or game):

* ``bronze/wearable_samples``: ``wearable.samples.v1``; ``date`` is the user's own day.
* ``bronze/game_events``: ``game.events.v1``; ``date`` is the UTC day of the
  skew-corrected ``occurred_at``. The event's facts only: what it earns is not derived
  here (a rule change would change what history means).
* ``bronze/reward_commands``: ``rewards.commands.v1``; ``date`` is the UTC day of
  ``issued_at``. The command is the fact of a reward: its amount is what the scoring agent
  issued under the rules in force then, and gold's token sums come from these rows.

Bronze tables of an older lake may have columns bronze no longer writes (``game_events``
had ``tokens_minted`` and ``tokens_burned``): ``append_bronze`` fills them with nulls.

Appends go through ``deltalake`` (delta-rs), one Delta commit per micro-batch: a
commit takes milliseconds in the sink's own process (28 ms at version 0, 63 ms by version
1,500), where a Spark Connect write costs a round trip and a Spark job (~1 s). Spark
(Delta Lake 4.3) builds silver and gold from these tables; both engines write protocol
(1, 2) tables without table features, so each reads what the other wrote.

The lake root is a folder, ``s3://bucket/prefix`` or ``s3a://bucket/prefix`` (the same
bucket and objects: ``s3a`` is Hadoop's name for it). ``spark_path`` gives Spark the
``s3a://`` form; delta-rs takes either, with ``storage_options`` from the settings (the
same endpoint and credentials as the Spark server's S3A).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from core.events.contracts import GameEvent, MatchResult, SessionStart
from core.platform.messages import Consumed
from core.rewards.commands import RewardCommand
from core.wearables.contracts import WearableSample

if TYPE_CHECKING:
    from deltalake import DeltaTable

log = logging.getLogger(__name__)

BRONZE_WEARABLE_SAMPLES = "bronze/wearable_samples"
BRONZE_GAME_EVENTS = "bronze/game_events"
BRONZE_REWARD_COMMANDS = "bronze/reward_commands"
SILVER_WEARABLE_SAMPLES = "silver/wearable_samples"
SILVER_GAME_EVENTS = "silver/game_events"
SILVER_REWARD_COMMANDS = "silver/reward_commands"
GOLD_USER_DAILY_HEALTH = "gold/user_daily_health"
GOLD_GAME_DAILY = "gold/game_daily"
WAREHOUSE_STAGE = "stage/warehouse"

TOKEN_TYPE = pa.decimal128(38, 18)
_TS = pa.timestamp("us", tz="UTC")

WEARABLE_SAMPLES_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("user_id", pa.string()),
        ("source", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("unit", pa.string()),
        ("start_at", _TS),
        ("end_at", _TS),
        ("utc_offset_minutes", pa.int16()),
        ("device", pa.string()),
        ("attributes", pa.string()),
        ("date", pa.date32()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("ingested_at", _TS),
    ]
)
WEARABLE_PARTITIONS = ["date", "source"]

GAME_EVENTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("game_id", pa.string()),
        ("player_id", pa.string()),
        ("type", pa.string()),
        ("occurred_at", _TS),
        ("client_occurred_at", _TS),
        ("received_at", _TS),
        ("session_id", pa.string()),
        ("match_outcome", pa.string()),
        ("score", pa.int64()),
        ("payload", pa.string()),
        ("date", pa.date32()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("ingested_at", _TS),
    ]
)
GAME_EVENT_PARTITIONS = ["date", "game_id"]

REWARD_COMMANDS_SCHEMA = pa.schema(
    [
        ("command_id", pa.string()),
        ("action", pa.string()),
        ("game_id", pa.string()),
        ("player_id", pa.string()),
        ("token", pa.string()),
        ("amount", TOKEN_TYPE),
        ("reason", pa.string()),
        ("source_event_id", pa.string()),
        ("issued_at", _TS),
        ("date", pa.date32()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("ingested_at", _TS),
    ]
)
REWARD_COMMAND_PARTITIONS = ["date", "game_id"]

_PARTITIONS = {
    BRONZE_WEARABLE_SAMPLES: WEARABLE_PARTITIONS,
    BRONZE_GAME_EVENTS: GAME_EVENT_PARTITIONS,
    BRONZE_REWARD_COMMANDS: REWARD_COMMAND_PARTITIONS,
}


def table_uri(lake_root: str, table: str) -> str:
    return f"{lake_root.rstrip('/')}/{table}"


def is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


def spark_path(uri: str) -> str:
    """The URI as Spark's Hadoop filesystems name it: ``s3://`` is ``s3a://`` (S3A)."""
    return "s3a://" + uri[len("s3://") :] if uri.startswith("s3://") else uri


def s3_uri(uri: str) -> str:
    """The URI as AWS names it (Redshift COPY, pyarrow): ``s3a://`` is ``s3://``."""
    return "s3://" + uri[len("s3a://") :] if uri.startswith("s3a://") else uri


def storage_options(uri: str) -> dict[str, str] | None:
    """delta-rs options for ``uri``: None for a local path, the S3 settings otherwise."""
    if not is_s3(uri):
        return None
    from core.platform.config import get_settings

    return get_settings().lake_storage_options


def arrow_filesystem(lake_root: str) -> tuple[Any, str]:
    """A pyarrow filesystem for the lake and the root's path inside it (staged Parquet)."""
    from pyarrow import fs

    if not is_s3(lake_root):
        return fs.LocalFileSystem(), str(Path(lake_root).resolve())
    from core.platform.config import get_settings

    settings = get_settings()
    endpoint = settings.lake_s3_endpoint
    credentials = settings.lake_s3_credentials_env
    filesystem = fs.S3FileSystem(
        region=settings.lake_s3_region,
        endpoint_override=endpoint.split("://", 1)[-1] if endpoint else None,
        scheme="http" if endpoint and endpoint.startswith("http://") else "https",
        access_key=credentials.get("AWS_ACCESS_KEY_ID"),
        secret_key=credentials.get("AWS_SECRET_ACCESS_KEY"),
        force_virtual_addressing=not settings.lake_s3_uses_path_style,
    )
    return filesystem, s3_uri(lake_root).removeprefix("s3://").rstrip("/")


def wearable_rows(items: Sequence[Consumed], ingested_at: datetime) -> pa.Table:
    """Built a column at a time: pyarrow converts the aware start and end to UTC itself."""
    samples = cast(list[WearableSample], [item.value for item in items])
    columns = {
        "sample_id": [str(s.sample_id) for s in samples],
        "user_id": [s.user_id for s in samples],
        "source": [s.source.value for s in samples],
        "metric": [s.metric.value for s in samples],
        "value": [s.value for s in samples],
        "unit": [s.unit for s in samples],
        "start_at": [s.start for s in samples],
        "end_at": [s.end for s in samples],
        "utc_offset_minutes": [_offset_minutes(s.start) for s in samples],
        "device": [s.device for s in samples],
        "attributes": [json.dumps(s.attributes, sort_keys=True) for s in samples],
        "date": [s.day for s in samples],
        "kafka_partition": [item.partition for item in items],
        "kafka_offset": [item.offset for item in items],
        "ingested_at": pa.repeat(pa.scalar(ingested_at, _TS), len(items)),
    }
    return pa.table(columns, schema=WEARABLE_SAMPLES_SCHEMA)


def _offset_minutes(moment: datetime) -> int:
    offset = moment.utcoffset()
    return int(offset.total_seconds() // 60) if offset else 0


def game_event_rows(items: Sequence[Consumed], ingested_at: datetime) -> pa.Table:
    """Built a column at a time: pyarrow converts aware datetimes to UTC and derives the UTC
    day itself, so no row needs ``astimezone`` or a date of its own."""
    events = cast(list[GameEvent], [item.value for item in items])
    payloads = [e.payload for e in events]
    received = [e.received_at or item.record_time for e, item in zip(events, items, strict=True)]
    occurred = pa.array(
        [e.corrected_occurred_at(r) for e, r in zip(events, received, strict=True)], _TS
    )
    columns = {
        "event_id": [str(e.event_id) for e in events],
        "game_id": [e.game_id for e in events],
        "player_id": [e.player_id for e in events],
        "type": [e.type for e in events],
        "occurred_at": occurred,
        "client_occurred_at": [e.occurred_at for e in events],
        "received_at": received,
        "session_id": [p.session_id if isinstance(p, SessionStart) else None for p in payloads],
        "match_outcome": [
            p.outcome.value if isinstance(p, MatchResult) else None for p in payloads
        ],
        "score": [e.score for e in events],
        # The bytes of ``model_dump_json()``, without its keyword handling and decode.
        "payload": [p.__pydantic_serializer__.to_json(p) for p in payloads],
        "date": occurred.cast(pa.date32()),
        "kafka_partition": [item.partition for item in items],
        "kafka_offset": [item.offset for item in items],
        "ingested_at": pa.repeat(pa.scalar(ingested_at, _TS), len(items)),
    }
    return pa.table(columns, schema=GAME_EVENTS_SCHEMA)


def reward_command_rows(items: Sequence[Consumed], ingested_at: datetime) -> pa.Table:
    """The commands as issued: the amount exactly (``decimal(38, 18)`` holds every valid
    amount), ``date`` the UTC day of ``issued_at`` (pyarrow converts to UTC itself)."""
    commands = cast(list[RewardCommand], [item.value for item in items])
    issued = pa.array([c.issued_at for c in commands], _TS)
    columns = {
        "command_id": [str(c.command_id) for c in commands],
        "action": [c.action.value for c in commands],
        "game_id": [c.game_id for c in commands],
        "player_id": [c.player_id for c in commands],
        "token": [c.token for c in commands],
        "amount": [c.amount for c in commands],
        "reason": [c.reason for c in commands],
        "source_event_id": [str(c.source_event_id) for c in commands],
        "issued_at": issued,
        "date": issued.cast(pa.date32()),
        "kafka_partition": [item.partition for item in items],
        "kafka_offset": [item.offset for item in items],
        "ingested_at": pa.repeat(pa.scalar(ingested_at, _TS), len(items)),
    }
    return pa.table(columns, schema=REWARD_COMMANDS_SCHEMA)


# How long bronze keeps Delta log entries (time travel, and the new-bronze sensor's cursor).
# Each commit lists ``_delta_log`` whole (on a local disk ~8.5 µs a file), and the sink
# commits up to ~1,800 times an hour per table: Delta's 30 days would mean ~1.3 million log
# files, 24 hours ~43,000 (~0.4 s a commit). Two hours keep it near 3,600 at peak and still
# cover the longest transaction (the hourly compaction, minutes) and a sensor or daemon
# pause of up to two hours; nothing reads bronze further back (silver is rebuilt from the
# current bronze, the warehouse keeps the history). Data files keep Delta's default week
# (``VACUUM_RETENTION_HOURS``): log cleanup never deletes data.
BRONZE_LOG_RETENTION = "interval 2 hours"
BRONZE_TABLE_PROPERTIES = {"delta.logRetentionDuration": BRONZE_LOG_RETENTION}


def append_bronze(lake_root: str, table: str, rows: pa.Table) -> None:
    """Append ``rows`` to a bronze table in one Delta commit (creating it on first use).

    A table of an older lake may have nullable columns bronze no longer writes: they get
    nulls (``with_table_columns``). The table is opened once, for its schema and the write."""
    from deltalake import DeltaTable, write_deltalake
    from deltalake.exceptions import TableNotFoundError

    if rows.num_rows == 0:
        return
    uri = table_uri(lake_root, table)
    target: DeltaTable | str
    try:
        target = DeltaTable(uri, storage_options=storage_options(uri))
    except TableNotFoundError:
        target = uri  # created by this write, with the batch's columns
    else:
        rows = with_table_columns(rows, pa.schema(target.schema().to_arrow()))
    write_deltalake(
        target,
        rows,
        mode="append",
        partition_by=_PARTITIONS[table],
        configuration=BRONZE_TABLE_PROPERTIES,  # kept by delta-rs only when it creates the table
        storage_options=storage_options(uri),
    )


def with_table_columns(rows: pa.Table, table_schema: pa.Schema) -> pa.Table:
    """``rows`` with a null column for every nullable column of the table they lack (a
    column bronze no longer writes, kept by an older table), in the table's column order.
    Anything else that differs is left for the write to refuse."""
    missing = [f for f in table_schema if f.nullable and f.name not in rows.column_names]
    if not missing:
        return rows
    for field in missing:
        rows = rows.append_column(field.name, pa.nulls(rows.num_rows, field.type))
    known = [name for name in table_schema.names if name in rows.column_names]
    return rows.select(known + [n for n in rows.column_names if n not in table_schema.names])


def _snapshot_at(uri: str, version: int) -> DeltaTable | None:
    """The table as of ``version``, or None when its log entries were cleaned up (older than
    the table's ``delta.logRetentionDuration``) or ``version`` is -1."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    if version < 0:
        return None
    try:
        return DeltaTable(uri, version=version, storage_options=storage_options(uri))
    except TableNotFoundError:  # delta-rs: "No files in log segment"
        log.warning(
            "%s: the log of version %d was cleaned up; every day in the table counts as new",
            uri,
            version,
        )
        return None


def _newer_than(uri: str, version: int) -> tuple[DeltaTable | None, int]:
    """The table and its current version, or (None, version) when there is no table (-1)
    or nothing after ``version``."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        current_table = DeltaTable(uri, storage_options=storage_options(uri))
    except TableNotFoundError:
        return None, -1
    current = current_table.version()
    return (current_table if current > version else None), current


def days_written_since(lake_root: str, table: str, version: int) -> tuple[int, set[date]]:
    """The table's current version and the days (``date`` partitions) of files added after
    ``version`` (-1: since the beginning). When ``version``'s log entries were cleaned up,
    every day in the table counts: more days than needed, never one missed. Reads only the
    Delta log, never the data."""
    uri = table_uri(lake_root, table)
    current_table, current = _newer_than(uri, version)
    if current_table is None:
        return current, set()
    old = _snapshot_at(uri, version)
    before = set(old.file_uris()) if old is not None else set()
    actions = pa.table(current_table.get_add_actions(flatten=True)).to_pydict()
    days: set[date] = set()
    for path, day in zip(actions["path"], actions["partition.date"], strict=True):
        if day is None:
            continue
        full = f"{uri.rstrip('/')}/{path}"
        if full not in before and Path(full).as_posix() not in before:
            days.add(day if isinstance(day, date) else date.fromisoformat(str(day)))
    return current, days


BRONZE_TABLES = (BRONZE_WEARABLE_SAMPLES, BRONZE_GAME_EVENTS, BRONZE_REWARD_COMMANDS)
# Delta's own default for ``delta.deletedFileRetentionDuration``: a reader that started on
# a version up to a week old (a long Spark job, a time-travel query) still finds its files.
VACUUM_RETENTION_HOURS = 168


@dataclass(frozen=True)
class MaintenanceReport:
    """What one maintenance pass did to a Delta table, bronze (delta-rs) or silver/gold
    (Spark SQL in ``spark_jobs/maintenance.py``): figures for the Dagster UI and logs."""

    table: str
    exists: bool
    version_before: int = -1
    version_after: int = -1
    files_before: int = 0
    files_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    files_compacted: int = 0
    files_written: int = 0
    files_vacuumed: int = 0
    checkpoint_version: int = -1
    seconds: float = 0.0

    def as_metadata(self) -> dict[str, str | int | float | bool]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def maintain_bronze(
    lake_root: str,
    table: str,
    *,
    partition_filters: list[tuple[str, str, Any]] | None = None,
    vacuum_retention_hours: int = VACUUM_RETENTION_HOURS,
) -> MaintenanceReport:
    """Set bronze's log retention, compact small files, checkpoint the log, drop the log
    files older than the retention, vacuum old files.

    The sink commits a small file every few hundred milliseconds, and the cost of each Delta
    commit grows with the number of live files and log entries: without this the sink's CPU
    grows by the hour. Compacting the partition the sink is writing is safe: its appends are
    blind, so delta-rs commits the compaction over them (the rows are neither lost nor
    doubled). ``partition_filters`` (e.g. ``[("date", "<", "2026-11-29")]``) limits the
    compaction to some partitions; checkpoint and vacuum always cover the whole table.
    Vacuum only deletes files removed from the table more than ``vacuum_retention_hours``
    ago; delta-rs refuses a retention shorter than the table's own (7 days by default).
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    started = time.perf_counter()
    try:
        uri = table_uri(lake_root, table)
        dt = DeltaTable(uri, storage_options=storage_options(uri))
    except TableNotFoundError:
        return MaintenanceReport(table=table, exists=False)
    configuration = dt.metadata().configuration
    if any(configuration.get(k) != v for k, v in BRONZE_TABLE_PROPERTIES.items()):
        # A table created before bronze had a log retention of its own: one metadata commit
        # (a sink append that loses the race to it fails, and the sink retries it).
        dt.alter.set_table_properties(BRONZE_TABLE_PROPERTIES)
    version_before = dt.version()
    files_before, bytes_before = _live_files(dt)
    compacted = dt.optimize.compact(partition_filters=partition_filters)
    dt.update_incremental()
    dt.create_checkpoint()
    checkpoint_version = dt.version()
    dt.cleanup_metadata()
    vacuumed = dt.vacuum(retention_hours=vacuum_retention_hours, dry_run=False)
    dt.update_incremental()
    files_after, bytes_after = _live_files(dt)
    return MaintenanceReport(
        table=table,
        exists=True,
        version_before=version_before,
        version_after=dt.version(),
        files_before=files_before,
        files_after=files_after,
        bytes_before=bytes_before,
        bytes_after=bytes_after,
        files_compacted=int(compacted["numFilesRemoved"]),
        files_written=int(compacted["numFilesAdded"]),
        files_vacuumed=len(vacuumed),
        checkpoint_version=checkpoint_version,
        seconds=round(time.perf_counter() - started, 3),
    )


def _live_files(dt: DeltaTable) -> tuple[int, int]:
    """Number and total size of the table's current data files, from the log alone."""
    sizes = pa.table(dt.get_add_actions()).column("size_bytes")
    return len(sizes), int(pc.sum(sizes).as_py() or 0)


def days_appended_since(lake_root: str, table: str, version: int) -> tuple[int, set[date]]:
    """Like ``days_written_since``, but a day whose files were only rewritten (compacted by
    ``maintain_bronze``: new files, the same rows) does not count. Bronze grows by appends
    alone, so a day that got rows has more rows; a day without row counts in the log counts
    whenever its files changed. When ``version``'s log entries were cleaned up (a cursor older
    than ``BRONZE_LOG_RETENTION``), every day in the table counts: rows appended between
    ``version`` and the oldest version left can no longer be told from older ones, and
    rebuilding days is safe where missing one is not. Reads only the Delta log, never the
    data."""
    uri = table_uri(lake_root, table)
    current_table, current = _newer_than(uri, version)
    if current_table is None:
        return current, set()
    now = _files_per_day(current_table)
    old = _snapshot_at(uri, version)
    then = _files_per_day(old) if old is not None else {}
    days = set()
    for day, (files, rows) in now.items():
        old_files, old_rows = then.get(day, (frozenset(), 0))
        if files != old_files and (rows is None or rows != old_rows):
            days.add(day)
    return current, days


def _files_per_day(dt: DeltaTable) -> dict[date, tuple[frozenset[str], int | None]]:
    """Each ``date`` partition's data files and row count (None: a file without a count)."""
    actions = pa.table(dt.get_add_actions(flatten=True)).to_pydict()
    paths: dict[date, set[str]] = {}
    rows: dict[date, int | None] = {}
    for path, day, records in zip(
        actions["path"], actions["partition.date"], actions["num_records"], strict=True
    ):
        if day is None:
            continue
        key = day if isinstance(day, date) else date.fromisoformat(str(day))
        paths.setdefault(key, set()).add(path)
        known = rows.get(key, 0)
        rows[key] = None if known is None or records is None else known + records
    return {day: (frozenset(files), rows[day]) for day, files in paths.items()}
