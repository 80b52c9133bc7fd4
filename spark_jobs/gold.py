"""Silver → gold: per user per day (health) and per game per day (play and tokens).

Overlapping devices: an iPhone and a Watch both count the same steps, and Oura and Apple
both record the same night. Gold therefore sums steps per device and sleep per source,
then keeps the largest total of the day instead of adding them up.

Tokens are a ledger by issue day: ``game_daily``'s ``tokens_minted`` / ``tokens_burned``
are the sums of the reward commands the scoring agent issued that UTC day for the game
(``silver/reward_commands``), not amounts derived from the day's events with today's rules.
A rule change therefore never changes a past day, and a late event's reward counts on the
day it was issued, not on the day the event happened.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from core.lake.bronze import (
    GOLD_GAME_DAILY,
    GOLD_USER_DAILY_HEALTH,
    SILVER_GAME_EVENTS,
    SILVER_REWARD_COMMANDS,
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


_COUNTS_AND_TOKENS = {
    "events": "bigint",
    "sessions": "bigint",
    "matches": "bigint",
    "active_players": "bigint",
    "tokens_minted": "decimal(38,18)",
    "tokens_burned": "decimal(38,18)",
}


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
    """Rebuild ``gold/game_daily`` for ``day``; returns its row count.

    The day's event aggregates full-outer-joined with the day's issued reward commands: a
    game with commands but no events gets a row with 0 events, a game with events but no
    commands 0 tokens (never null)."""
    events = read_day(spark, table_uri(lake_root, SILVER_GAME_EVENTS), day)
    commands = read_day(spark, table_uri(lake_root, SILVER_REWARD_COMMANDS), day)
    per_game = [
        aggregate(df)
        for aggregate, df in ((_play_per_game, events), (_tokens_per_game, commands))
        if df is not None
    ]
    if not per_game:
        return 0
    joined = per_game[0]
    if len(per_game) == 2:
        joined = joined.join(per_game[1], ["game_id", "date"], "full_outer")
    gold = joined.select(
        *(
            _zero_if_null(joined, c, _COUNTS_AND_TOKENS[c]) if c in _COUNTS_AND_TOKENS else c
            for c in GAME_DAILY_COLUMNS
        )
    )
    path = table_uri(lake_root, GOLD_GAME_DAILY)
    replace_day(gold, path, day, ["date"])
    return read_day(spark, path, day).count()  # type: ignore[union-attr]


def _play_per_game(events: DataFrame) -> DataFrame:
    return events.groupBy("game_id", "date").agg(
        F.count(F.lit(1)).alias("events"),
        F.countDistinct(F.when(F.col("type") == "session_start", F.col("session_id"))).alias(
            "sessions"
        ),
        F.sum(F.when(F.col("type") == "match_result", 1).otherwise(0)).alias("matches"),
        F.countDistinct("player_id").alias("active_players"),
    )


def _tokens_per_game(commands: DataFrame) -> DataFrame:
    return commands.groupBy("game_id", "date").agg(
        F.sum(F.when(F.col("action") == "mint", F.col("amount"))).alias("tokens_minted"),
        F.sum(F.when(F.col("action") == "burn", F.col("amount"))).alias("tokens_burned"),
    )


def _zero_if_null(df: DataFrame, column: str, type_: str) -> Column:
    """``column`` as ``type_`` with 0 for null (a side of the join without that game, or no
    input table at all yet)."""
    value = F.coalesce(F.col(column), F.lit(0)) if column in df.columns else F.lit(0)
    return value.cast(type_).alias(column)
