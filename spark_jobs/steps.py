"""The lakehouse's Spark steps: each rebuilds one day of one silver or gold table and
measures what the Dagster UI shows about it (metadata, the blocking checks' results).

The outcome is plain values in Dagster Pipes' shape (``{"raw_value": ..., "type": ...}``)
so that one code path serves both ways a step runs: over Spark Connect inside the Dagster
process (``dagster_project.resources.SparkConnect``), or as a batch job on EMR Serverless
or a local ``spark-submit`` (``spark_jobs/entry.py``), which sends the same values back
through Pipes. This module imports neither Dagster nor delta-rs: a job ships with
``dagster-pipes`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from core.lake.bronze import (
    BRONZE_GAME_EVENTS,
    BRONZE_REWARD_COMMANDS,
    BRONZE_WEARABLE_SAMPLES,
    GOLD_GAME_DAILY,
    GOLD_USER_DAILY_HEALTH,
    SILVER_GAME_EVENTS,
    SILVER_REWARD_COMMANDS,
    SILVER_WEARABLE_SAMPLES,
    table_uri,
)
from spark_jobs.gold import build_gold_game_daily, build_gold_user_daily_health
from spark_jobs.session import read_day
from spark_jobs.silver import (
    build_silver_game_events,
    build_silver_reward_commands,
    build_silver_wearable_samples,
)

PREVIEW_ROWS = 10
# The checks every gold step evaluates, in the order they are reported.
GOLD_CHECKS = ("keys_not_null", "no_duplicates", "row_count_sane")

Metadata = dict[str, dict[str, Any]]  # name -> {"raw_value": ..., "type": "int" | "md" | "path"}


def _int(value: int) -> dict[str, Any]:
    return {"raw_value": int(value), "type": "int"}


def _md(value: str) -> dict[str, Any]:
    return {"raw_value": value, "type": "md"}


def _path(value: str) -> dict[str, Any]:
    return {"raw_value": value, "type": "path"}


@dataclass(frozen=True)
class CheckOutcome:
    """One blocking check's verdict on the day just written."""

    name: str
    passed: bool
    metadata: Metadata


@dataclass(frozen=True)
class StepOutcome:
    """What a step reports: the materialization's metadata and its checks' results.

    ``metadata`` holds ``delta_table`` when the step wrote the table; the Dagster side adds
    the Delta version it then reads from the table's log (delta-rs, in both modes)."""

    metadata: Metadata
    checks: list[CheckOutcome] = field(default_factory=list)


# ---- silver ---------------------------------------------------------------------------------


def _day_over_everywhere() -> Column:
    """The end of a row's local day in the last time zone (UTC-12): its UTC midnight + 36 h."""
    return F.col("date").cast("timestamp") + F.expr("INTERVAL 36 HOURS")


def bronze_profile(
    session: SparkSession, lake_root: str, table: str, key: str, day: date
) -> dict[str, int]:
    """Bronze rows of ``day``, how many distinct ``key`` they hold, and how many arrived
    after their day was over in every time zone (late rows: ingested 36 h or more after
    the day began in UTC; a wearable day is the user's local day, up to UTC-12): one Spark
    query."""
    bronze = read_day(session, table_uri(lake_root, table), day)
    if bronze is None:
        return {"rows_in": 0, "distinct_keys": 0, "late_rows": 0}
    row = bronze.agg(
        F.count(F.lit(1)).alias("rows_in"),
        F.countDistinct(key).alias("distinct_keys"),
        F.sum(F.when(F.col("ingested_at") >= _day_over_everywhere(), 1).otherwise(0)).alias(
            "late_rows"
        ),
    ).first()
    if row is None:
        return {"rows_in": 0, "distinct_keys": 0, "late_rows": 0}
    return {name: int(row[name] or 0) for name in ("rows_in", "distinct_keys", "late_rows")}


@dataclass(frozen=True)
class _Silver:
    bronze: str
    silver: str
    key: str
    build: Callable[[SparkSession, str, date], int]


SILVER_STEPS = {
    "silver_wearable_samples": _Silver(
        BRONZE_WEARABLE_SAMPLES, SILVER_WEARABLE_SAMPLES, "sample_id", build_silver_wearable_samples
    ),
    "silver_game_events": _Silver(
        BRONZE_GAME_EVENTS, SILVER_GAME_EVENTS, "event_id", build_silver_game_events
    ),
    "silver_reward_commands": _Silver(
        BRONZE_REWARD_COMMANDS, SILVER_REWARD_COMMANDS, "command_id", build_silver_reward_commands
    ),
}


def run_silver(session: SparkSession, spec: _Silver, lake_root: str, day: date) -> StepOutcome:
    profile = bronze_profile(session, lake_root, spec.bronze, spec.key, day)
    rows = spec.build(session, lake_root, day)
    metadata: Metadata = {
        "rows": _int(rows),
        "rows_in": _int(profile["rows_in"]),
        "rows_out": _int(rows),
        "late_rows": _int(profile["late_rows"]),
        "dropped_by_dedupe": _int(profile["rows_in"] - profile["distinct_keys"]),
    }
    if profile["distinct_keys"] != rows:  # wearables: units silver does not know
        metadata["dropped_unknown_unit"] = _int(profile["distinct_keys"] - rows)
    if profile["rows_in"]:
        metadata["delta_table"] = _path(table_uri(lake_root, spec.silver))
    return StepOutcome(metadata=metadata)


# ---- gold -----------------------------------------------------------------------------------


def gold_checks(
    gold: DataFrame | None, silver: DataFrame | None, grain: tuple[str, ...]
) -> list[CheckOutcome]:
    """Evaluate the blocking checks of one day of a gold table against its silver input.

    One query per table (rows, rows with a null key and duplicated keys come from one
    aggregate over gold's keys): on Spark every query costs a job and ~0.3 s at least.
    """
    entity = grain[-1]
    gold_rows = null_keys = duplicates = 0
    if gold is not None:
        per_key = gold.groupBy(*grain).count()
        any_null = F.lit(False)
        for key in grain:
            any_null = any_null | F.col(key).isNull()
        totals = per_key.agg(
            F.sum("count").alias("rows"),
            F.sum(F.when(any_null, F.col("count")).otherwise(0)).alias("null_keys"),
            F.sum(F.when(F.col("count") > 1, 1).otherwise(0)).alias("duplicates"),
        ).first()
        if totals is not None and totals["rows"] is not None:
            gold_rows = int(totals["rows"])
            null_keys = int(totals["null_keys"])
            duplicates = int(totals["duplicates"])
    expected = 0 if silver is None else silver.select(entity).distinct().count()
    return [
        CheckOutcome("keys_not_null", null_keys == 0, {"rows_with_null_key": _int(null_keys)}),
        CheckOutcome("no_duplicates", duplicates == 0, {"duplicated_keys": _int(duplicates)}),
        CheckOutcome(
            "row_count_sane",
            gold_rows == expected and (expected == 0 or gold_rows > 0),
            {"gold_rows": _int(gold_rows), "silver_keys": _int(expected)},
        ),
    ]


def preview(gold: DataFrame | None, grain: tuple[str, ...]) -> str:
    """The first ``PREVIEW_ROWS`` rows of the day's gold, as a Markdown table."""
    if gold is None:
        return "_no rows_"
    rows = gold.orderBy(*grain).limit(PREVIEW_ROWS).collect()
    if not rows:
        return "_no rows_"
    columns = [c for c in gold.columns if c != "date"]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _gold_outcome(
    lake_root: str,
    table: str,
    rows: int,
    gold: DataFrame | None,
    grain: tuple[str, ...],
    checks: list[CheckOutcome],
) -> StepOutcome:
    """Rows in (silver keys of the day, as the row-count check counted them), rows out and a
    preview."""
    silver_keys = next(c for c in checks if c.name == "row_count_sane").metadata["silver_keys"]
    metadata: Metadata = {
        "rows": _int(rows),
        "rows_in": silver_keys,
        "rows_out": _int(rows),
        "preview": _md(preview(gold, grain)),
    }
    if gold is not None:
        metadata["delta_table"] = _path(table_uri(lake_root, table))
    return StepOutcome(metadata=metadata, checks=checks)


def run_gold_user_daily_health(session: SparkSession, lake_root: str, day: date) -> StepOutcome:
    rows = build_gold_user_daily_health(session, lake_root, day)
    grain = ("date", "user_id")
    gold = read_day(session, table_uri(lake_root, GOLD_USER_DAILY_HEALTH), day)
    silver = read_day(session, table_uri(lake_root, SILVER_WEARABLE_SAMPLES), day)
    checks = gold_checks(gold, silver, grain)
    return _gold_outcome(lake_root, GOLD_USER_DAILY_HEALTH, rows, gold, grain, checks)


def run_gold_game_daily(session: SparkSession, lake_root: str, day: date) -> StepOutcome:
    rows = build_gold_game_daily(session, lake_root, day)
    # A game has a row when it had events or reward commands that day.
    silver = [
        df.select("game_id")
        for df in (
            read_day(session, table_uri(lake_root, SILVER_GAME_EVENTS), day),
            read_day(session, table_uri(lake_root, SILVER_REWARD_COMMANDS), day),
        )
        if df is not None
    ]
    grain = ("date", "game_id")
    gold = read_day(session, table_uri(lake_root, GOLD_GAME_DAILY), day)
    checks = gold_checks(gold, reduce(DataFrame.unionByName, silver) if silver else None, grain)
    return _gold_outcome(lake_root, GOLD_GAME_DAILY, rows, gold, grain, checks)


GOLD_STEPS: dict[str, Callable[[SparkSession, str, date], StepOutcome]] = {
    "gold_user_daily_health": run_gold_user_daily_health,
    "gold_game_daily": run_gold_game_daily,
}
STEPS = (*SILVER_STEPS, *GOLD_STEPS)


def run_step(session: SparkSession, step: str, lake_root: str, day: date) -> StepOutcome:
    """Rebuild ``day`` of the table of ``step`` (an asset's name, ``silver_game_events``)."""
    if step in SILVER_STEPS:
        return run_silver(session, SILVER_STEPS[step], lake_root, day)
    if step in GOLD_STEPS:
        return GOLD_STEPS[step](session, lake_root, day)
    raise ValueError(f"no Spark step {step!r}: one of {', '.join(STEPS)}")
