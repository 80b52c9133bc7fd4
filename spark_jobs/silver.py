"""Bronze → silver: one row per sample / event / command id, canonical units, one day at a time.

Late data needs no special case: bronze is partitioned by the day a sample or event
belongs to, so a late message lands in its old day's partition, the Dagster sensor sees
the new file there and this job rebuilds that day from all of its bronze rows. Reward
commands belong to the day they were issued (a command redelivered or republished keeps
its ``issued_at``, so its copies share a day and dedupe there).

Silver keeps the columns listed here and nothing else: ``bronze/game_events`` of an older
lake still has ``tokens_minted`` and ``tokens_burned`` (amounts derived with the rules of
the day they were ingested, null in rows appended since); silver drops them, and gold's
tokens come only from ``silver/reward_commands``.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from core.lake.bronze import (
    BRONZE_GAME_EVENTS,
    BRONZE_REWARD_COMMANDS,
    BRONZE_WEARABLE_SAMPLES,
    SILVER_GAME_EVENTS,
    SILVER_REWARD_COMMANDS,
    SILVER_WEARABLE_SAMPLES,
    table_uri,
)
from spark_jobs.session import read_day, replace_day

# (metric, vendor unit) → (factor, canonical unit); units not listed are dropped.
UNIT_CONVERSIONS: dict[tuple[str, str], tuple[float, str]] = {
    ("steps", "count"): (1.0, "count"),
    ("heart_rate", "bpm"): (1.0, "bpm"),
    ("heart_rate", "count/min"): (1.0, "bpm"),
    ("resting_heart_rate", "bpm"): (1.0, "bpm"),
    ("resting_heart_rate", "count/min"): (1.0, "bpm"),
    ("sleep", "s"): (1 / 60, "min"),
    ("sleep", "min"): (1.0, "min"),
    ("sleep_score", "score"): (1.0, "score"),
    ("distance", "m"): (1.0, "m"),
    ("distance", "km"): (1000.0, "m"),
    ("distance", "mi"): (1609.344, "m"),
    ("active_energy", "kcal"): (1.0, "kcal"),
    ("active_energy", "Cal"): (1.0, "kcal"),
    ("active_energy", "kJ"): (1 / 4.184, "kcal"),
    ("audio_recording", "s"): (1.0, "s"),
}

SILVER_WEARABLE_COLUMNS = [
    "sample_id",
    "user_id",
    "source",
    "metric",
    "value",
    "unit",
    "start_at",
    "end_at",
    "utc_offset_minutes",
    "device",
    "attributes",
    "ingested_at",
    "date",
]
SILVER_GAME_COLUMNS = [
    "event_id",
    "game_id",
    "player_id",
    "type",
    "occurred_at",
    "received_at",
    "session_id",
    "match_outcome",
    "score",
    "payload",
    "ingested_at",
    "date",
]
SILVER_REWARD_COMMAND_COLUMNS = [
    "command_id",
    "action",
    "game_id",
    "player_id",
    "token",
    "amount",
    "reason",
    "source_event_id",
    "issued_at",
    "ingested_at",
    "date",
]


def latest_per_key(df: DataFrame, *key: str) -> DataFrame:
    """One row per ``key``: the last ingested copy (bronze keeps every redelivery)."""
    order = Window.partitionBy(*key).orderBy(
        F.col("ingested_at").desc(), F.col("kafka_partition").desc(), F.col("kafka_offset").desc()
    )
    return df.withColumn("_n", F.row_number().over(order)).where("_n = 1").drop("_n")


def normalize_units(spark: SparkSession, df: DataFrame) -> DataFrame:
    conversions = spark.createDataFrame(
        [(m, u, f, c) for (m, u), (f, c) in UNIT_CONVERSIONS.items()],
        "metric string, unit string, factor double, canonical_unit string",
    )
    return (
        df.join(F.broadcast(conversions), ["metric", "unit"], "inner")
        .withColumn("value", F.col("value") * F.col("factor"))
        .withColumn("unit", F.col("canonical_unit"))
        .drop("factor", "canonical_unit")
    )


def build_silver_wearable_samples(spark: SparkSession, lake_root: str, day: date) -> int:
    """Rebuild silver wearable samples of ``day``; returns its row count."""
    bronze = read_day(spark, table_uri(lake_root, BRONZE_WEARABLE_SAMPLES), day)
    if bronze is None:
        return 0
    silver = normalize_units(spark, latest_per_key(bronze, "sample_id")).select(
        *SILVER_WEARABLE_COLUMNS
    )
    replace_day(silver, table_uri(lake_root, SILVER_WEARABLE_SAMPLES), day, ["date"])
    return _count_day(spark, table_uri(lake_root, SILVER_WEARABLE_SAMPLES), day)


def build_silver_game_events(spark: SparkSession, lake_root: str, day: date) -> int:
    """Rebuild silver game events of ``day``; returns its row count."""
    return _dedupe_day(
        spark,
        lake_root,
        day,
        (BRONZE_GAME_EVENTS, SILVER_GAME_EVENTS),
        ("game_id", "event_id"),  # each game picks its own event ids
        SILVER_GAME_COLUMNS,
    )


def build_silver_reward_commands(spark: SparkSession, lake_root: str, day: date) -> int:
    """Rebuild silver reward commands issued on ``day`` (one per ``command_id``); returns
    its row count."""
    return _dedupe_day(
        spark,
        lake_root,
        day,
        (BRONZE_REWARD_COMMANDS, SILVER_REWARD_COMMANDS),
        ("command_id",),
        SILVER_REWARD_COMMAND_COLUMNS,
    )


def _dedupe_day(
    spark: SparkSession,
    lake_root: str,
    day: date,
    tables: tuple[str, str],
    key: tuple[str, ...],
    columns: list[str],
) -> int:
    """Make silver's ``day`` the latest bronze copy per ``key`` with ``columns``."""
    bronze_table, silver_table = tables
    bronze = read_day(spark, table_uri(lake_root, bronze_table), day)
    if bronze is None:
        return 0
    silver = latest_per_key(bronze, *key).select(*columns)
    replace_day(silver, table_uri(lake_root, silver_table), day, ["date"])
    return _count_day(spark, table_uri(lake_root, silver_table), day)


def _count_day(spark: SparkSession, path: str, day: date) -> int:
    df = read_day(spark, path, day)
    return 0 if df is None else df.count()
