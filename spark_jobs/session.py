"""Spark Connect sessions and the one safe way to rewrite a day of a Delta table."""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, SparkSession


def spark_session(url: str) -> SparkSession:
    """A Spark Connect session to ``url`` (``sc://host:port``)."""
    return SparkSession.builder.remote(url).getOrCreate()


def stop_sessions() -> None:
    """Close this process's Spark Connect session while its server is still up (otherwise
    the client's exit hook keeps retrying a server that is gone)."""
    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()


def delta_exists(spark: SparkSession, path: str) -> bool:
    try:
        spark.read.format("delta").load(path).limit(0).collect()
    except Exception:
        return False
    return True


def read_day(spark: SparkSession, path: str, day: date) -> DataFrame | None:
    """Rows of one ``date`` partition, or None when the table does not exist yet."""
    if not delta_exists(spark, path):
        return None
    return spark.read.format("delta").load(path).where(f"`date` = DATE'{day.isoformat()}'")


def replace_day(df: DataFrame, path: str, day: date, partition_by: list[str]) -> None:
    """Make ``df`` the whole ``date = day`` partition of the table at ``path``.

    ``replaceWhere`` rewrites only that day, atomically, so rerunning a day is idempotent
    and never touches other days. (Dynamic partition overwrite is not used: pysail ignores
    it and would replace the whole table.) The first write creates the table.
    """
    spark = df.sparkSession
    writer = df.write.format("delta").partitionBy(*partition_by)
    if delta_exists(spark, path):
        condition = f"`date` = DATE'{day.isoformat()}'"
        writer.mode("overwrite").option("replaceWhere", condition).save(path)
    else:
        writer.mode("append").save(path)


def spark_problem(host: str, port: int, timeout: float = 1.0) -> str | None:
    """None when something accepts connections on the Spark Connect port."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"Spark Connect unreachable at {host}:{port} ({exc})"
