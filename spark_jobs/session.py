"""Spark Connect sessions and the one safe way to rewrite a day of a Delta table.

Every path given to Spark goes through ``core.lake.bronze.spark_path`` (``s3://`` → ``s3a://``).
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, SparkSession

from core.lake.bronze import spark_path

# The session the readiness probe reuses, so probing never piles up server-side sessions.
PROBE_SESSION_ID = "5f0a4c1e-57d1-4e0b-9b8a-0000000000a1"


def spark_session(url: str) -> SparkSession:
    """A Spark Connect session to ``url`` (``sc://host:port``)."""
    return SparkSession.builder.remote(url).getOrCreate()


def stop_sessions() -> None:
    """Close this process's Spark Connect session while its server is still up (otherwise
    the client's exit hook keeps retrying a server that is gone)."""
    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()


# What Spark 4.1 / Delta 4.3 answer for a path without a Delta table (nothing there, or
# files that are not a Delta table).
_NO_TABLE = frozenset(
    {
        "PATH_NOT_FOUND",
        "DELTA_TABLE_NOT_FOUND",
        "DELTA_MISSING_DELTA_TABLE",
        "DELTA_PATH_DOES_NOT_EXIST",
    }
)


def delta_exists(spark: SparkSession, path: str) -> bool:
    """Whether ``path`` holds a Delta table: resolving its schema is an analysis request to
    the server, no Spark job. Any other error (server down, S3 refusing) is raised: taking
    it for "no table" would make ``replace_day`` append a day instead of replacing it."""
    from pyspark.errors import AnalysisException

    try:
        spark.read.format("delta").load(spark_path(path)).schema  # noqa: B018
    except AnalysisException as exc:
        # getCondition is Spark 4's name; EMR 7's Spark 3.5 has only getErrorClass.
        condition = getattr(exc, "getCondition", exc.getErrorClass)()
        if condition in _NO_TABLE:
            return False
        raise
    return True


def read_day(spark: SparkSession, path: str, day: date) -> DataFrame | None:
    """Rows of one ``date`` partition, or None when the table does not exist yet."""
    if not delta_exists(spark, path):
        return None
    return (
        spark.read.format("delta").load(spark_path(path)).where(f"`date` = DATE'{day.isoformat()}'")
    )


def replace_day(df: DataFrame, path: str, day: date, partition_by: list[str]) -> None:
    """Make ``df`` the whole ``date = day`` partition of the table at ``path``.

    ``replaceWhere`` rewrites only that day, atomically, so rerunning a day is idempotent
    and never touches other days. Delta also checks that every row written matches the
    condition (a row of another day fails the write instead of landing there). Dynamic
    partition overwrite, which Delta 4.3 supports too, is not used: a rebuild that yields
    no rows would leave the day's old rows in place, where ``replaceWhere`` empties the day.
    The first write creates the table.
    """
    spark = df.sparkSession
    target = spark_path(path)
    writer = df.write.format("delta").partitionBy(*partition_by)
    if delta_exists(spark, path):
        condition = f"`date` = DATE'{day.isoformat()}'"
        writer.mode("overwrite").option("replaceWhere", condition).save(target)
    else:
        writer.mode("append").save(target)


def spark_problem(host: str, port: int, timeout: float = 2.0) -> str | None:
    """None when a Spark Connect server answers an AnalyzePlan(SparkVersion) request at
    ``host:port``: a real gRPC call to the server (~20 ms, no Spark job), so a port that
    accepts connections before the JVM's session is up does not count as ready."""
    import grpc
    from pyspark.sql.connect.proto import base_pb2, base_pb2_grpc

    request = base_pb2.AnalyzePlanRequest(
        session_id=PROBE_SESSION_ID,
        user_context=base_pb2.UserContext(user_id="stride-probe"),
        spark_version=base_pb2.AnalyzePlanRequest.SparkVersion(),
    )
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        try:
            answer = base_pb2_grpc.SparkConnectServiceStub(channel).AnalyzePlan(
                request, timeout=timeout
            )
        except grpc.RpcError as exc:
            detail = (exc.details() or "").splitlines()[0] if exc.details() else ""
            return f"Spark Connect not answering at {host}:{port} ({exc.code().name}: {detail})"
    if not answer.spark_version.version:
        return f"Spark Connect at {host}:{port} answered without a Spark version"
    return None
