"""Silver → gold: per user per day (health) and per game per day (play and tokens).

Overlapping devices: an iPhone and a Watch both count the same steps, and Oura and Apple
both record the same night. Gold therefore sums steps per device and sleep per source,
then keeps the largest total of the day instead of adding them up.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from core.lake.bronze import (
    GOLD_GAME_DAILY,
    GOLD_USER_DAILY_HEALTH,
    SILVER_GAME_EVENTS,
    SILVER_WEARABLE_SAMPLES,
    table_uri,
)
from spark_jobs.session import read_day, replace_day

USER_DAILY_HEALTH_COLUMNS = [
    "user_id",
    "steps",
    "resting_heart_rate",
    "sleep_minutes",
    "sample_count",
    "date",
]
GAME_DAILY_COLUMNS = [
    "game_id",
    "events",
    "sessions",
    "matches",
    "active_players",
    "tokens_minted",
    "tokens_burned",
    "date",
]


def build_gold_user_daily_health(spark: SparkSession, lake_root: str, day: date) -> int:
    """Rebuild ``gold/user_daily_health`` for ``day``; returns its row count."""
    silver = read_day(spark, table_uri(lake_root, SILVER_WEARABLE_SAMPLES), day)
    if silver is None:
        return 0
    per_device = silver.groupBy("user_id", "date", "source", "device").agg(
        F.sum(F.when(F.col("metric") == "steps", F.col("value"))).alias("steps"),
        F.sum(F.when(F.col("metric") == "sleep", F.col("value"))).alias("sleep_minutes"),
    )
    best = per_device.groupBy("user_id", "date").agg(
        F.max("steps").alias("steps"), F.max("sleep_minutes").alias("sleep_minutes")
    )
    totals = silver.groupBy("user_id", "date").agg(
        F.avg(F.when(F.col("metric") == "resting_heart_rate", F.col("value"))).alias(
            "resting_heart_rate"
        ),
        F.count(F.lit(1)).alias("sample_count"),
    )
    gold = (
        totals.join(best, ["user_id", "date"], "left")
        .withColumn("steps", F.round("steps").cast("bigint"))
        .withColumn("resting_heart_rate", F.round("resting_heart_rate", 1))
        .withColumn("sleep_minutes", F.round("sleep_minutes", 1))
        .select(*USER_DAILY_HEALTH_COLUMNS)
    )
    path = table_uri(lake_root, GOLD_USER_DAILY_HEALTH)
    replace_day(gold, path, day, ["date"])
    return read_day(spark, path, day).count()  # type: ignore[union-attr]


def build_gold_game_daily(spark: SparkSession, lake_root: str, day: date) -> int:
    """Rebuild ``gold/game_daily`` for ``day``; returns its row count."""
    silver = read_day(spark, table_uri(lake_root, SILVER_GAME_EVENTS), day)
    if silver is None:
        return 0
    gold = (
        silver.groupBy("game_id", "date")
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.countDistinct(F.when(F.col("type") == "session_start", F.col("session_id"))).alias(
                "sessions"
            ),
            F.sum(F.when(F.col("type") == "match_result", 1).otherwise(0)).alias("matches"),
            F.countDistinct("player_id").alias("active_players"),
            F.sum("tokens_minted").alias("tokens_minted"),
            F.sum("tokens_burned").alias("tokens_burned"),
        )
        .withColumn("tokens_minted", F.col("tokens_minted").cast("decimal(38,18)"))
        .withColumn("tokens_burned", F.col("tokens_burned").cast("decimal(38,18)"))
        .withColumn("matches", F.col("matches").cast("bigint"))
        .select(*GAME_DAILY_COLUMNS)
    )
    path = table_uri(lake_root, GOLD_GAME_DAILY)
    replace_day(gold, path, day, ["date"])
    return read_day(spark, path, day).count()  # type: ignore[union-attr]
