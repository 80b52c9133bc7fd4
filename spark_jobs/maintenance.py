"""Silver and gold maintenance with Delta Lake's own commands, through Spark Connect:
``OPTIMIZE`` (compaction), ``VACUUM`` and ``DESCRIBE HISTORY`` / ``DESCRIBE DETAIL``.

Spark writes silver and gold, so Spark maintains them. Each rebuild of a day replaces that
day's files (``replaceWhere``: up to ``spark_shuffle_partitions`` new files, the old ones
only removed from the log), so without maintenance a table collects one set of dead files
per rebuild and a set of small live files per day. The Delta commands are SQL because
``delta.tables.DeltaTable`` needs Delta's Spark Connect server plugin, which Delta 4.3 does
not publish for Spark 4.1 ("No handler found for extension" over Connect); the SQL
commands run in the server's ``DeltaSparkSessionExtension`` and work.

Bronze is maintained by delta-rs instead (``core.lake.bronze.maintain_bronze``): its writer is the
lake sink's delta-rs, compaction must commit over the sink's appends every hour, and it
needs no Spark server.

VACUUM in Delta 4.3 takes its retention from the table property
``delta.deletedFileRetentionDuration`` (``RETAIN n HOURS`` other than 0 is ignored, with a
warning), so the retention asked for is set as that property first (one commit, once).
"""

from __future__ import annotations

import time
from typing import cast

from pyspark.sql import SparkSession

from core.lake.bronze import MaintenanceReport, spark_path
from spark_jobs.session import delta_exists

RETENTION_PROPERTY = "delta.deletedFileRetentionDuration"


def _ident(path: str) -> str:
    return "delta.`" + spark_path(path).replace("`", "``") + "`"


def table_detail(spark: SparkSession, path: str) -> dict[str, object]:
    """``DESCRIBE DETAIL``: numFiles, sizeInBytes, properties, partitionColumns, ..."""
    row = spark.sql(f"DESCRIBE DETAIL {_ident(path)}").first()
    return row.asDict() if row is not None else {}


def table_history(spark: SparkSession, path: str, limit: int = 20) -> list[dict[str, object]]:
    """The last ``limit`` commits, newest first (version, timestamp, operation, metrics)."""
    rows = (
        spark.sql(f"DESCRIBE HISTORY {_ident(path)} LIMIT {int(limit)}")
        .select("version", "timestamp", "operation", "operationParameters", "operationMetrics")
        .collect()
    )
    return [row.asDict() for row in rows]


def maintain_table(
    spark: SparkSession, path: str, *, retention_hours: int, table: str = ""
) -> MaintenanceReport:
    """Set the file retention, compact small files (``OPTIMIZE``) and delete files removed
    from the table more than ``retention_hours`` ago (``VACUUM``).

    Five Spark calls (six when the retention changes): each costs 0.3 to 3 s here, so
    the figures after are derived from OPTIMIZE's metrics instead of asked for again."""
    started = time.perf_counter()
    name = table or path
    if not delta_exists(spark, path):
        return MaintenanceReport(table=name, exists=False)
    before = table_detail(spark, path)
    version_before = int(table_history(spark, path, 1)[0]["version"])  # type: ignore[call-overload]
    retention = f"interval {int(retention_hours)} hours"
    properties = cast(dict[str, str], before.get("properties") or {})
    if properties.get(RETENTION_PROPERTY) != retention:
        spark.sql(
            f"ALTER TABLE {_ident(path)} SET TBLPROPERTIES ('{RETENTION_PROPERTY}' = '{retention}')"
        )
    optimized = (
        spark.sql(f"OPTIMIZE {_ident(path)}")
        .selectExpr(
            "metrics.numFilesRemoved AS removed",
            "metrics.numFilesAdded AS added",
            "metrics.filesRemoved.totalSize AS removed_bytes",
            "metrics.filesAdded.totalSize AS added_bytes",
        )
        .first()
    )
    spark.sql(f"VACUUM {_ident(path)}").collect()
    vacuum = table_history(spark, path, 1)[0]
    metrics = cast(dict[str, str], vacuum["operationMetrics"] or {})
    vacuumed = int(metrics.get("numDeletedFiles", 0)) if vacuum["operation"] == "VACUUM END" else 0
    files_before = int(before.get("numFiles") or 0)  # type: ignore[call-overload]
    bytes_before = int(before.get("sizeInBytes") or 0)  # type: ignore[call-overload]
    removed = int(optimized["removed"] or 0) if optimized else 0
    added = int(optimized["added"] or 0) if optimized else 0
    return MaintenanceReport(
        table=name,
        exists=True,
        version_before=version_before,
        version_after=int(vacuum["version"]),  # type: ignore[call-overload]
        files_before=files_before,
        files_after=files_before - removed + added,
        bytes_before=bytes_before,
        bytes_after=bytes_before
        - (int(optimized["removed_bytes"] or 0) if optimized else 0)
        + (int(optimized["added_bytes"] or 0) if optimized else 0),
        files_compacted=removed,
        files_written=added,
        files_vacuumed=vacuumed,
        seconds=round(time.perf_counter() - started, 3),
    )
