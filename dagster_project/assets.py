"""Assets per lake table and warehouse table, partitioned by day, with blocking checks.

Bronze tables are written by the Faust lake sink, so they are external assets here.
Every other asset rebuilds exactly one day (``replaceWhere`` in the lake, DELETE + COPY in
the warehouse), so rerunning a partition changes nothing. Gold assets carry blocking
checks (keys not null, no duplicates, row-count sanity): when one fails, the warehouse
asset downstream is not run and the warehouse keeps its previous, good rows.
"""

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from functools import reduce
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
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
    storage_options,
    table_uri,
)
from core.platform.config import LakeSettings
from core.warehouse.load import GAME_DAILY, USER_DAILY_HEALTH, WarehouseTable, load_gold_day
from dagster_project.resources import Lake, SparkConnect, WarehouseTarget
from spark_jobs.gold import build_gold_game_daily, build_gold_user_daily_health
from spark_jobs.session import read_day
from spark_jobs.silver import (
    build_silver_game_events,
    build_silver_reward_commands,
    build_silver_wearable_samples,
)

# Where the partitions start: STRIDE_LAKE_FIRST_DAY (read when the code location loads).
FIRST_DAY = LakeSettings().lake_first_day
BRONZE_STALE_AFTER_HOURS = 26
PREVIEW_ROWS = 10
daily = dg.DailyPartitionsDefinition(start_date=FIRST_DAY.isoformat(), end_offset=1)

bronze_wearable_samples = dg.AssetSpec(
    "bronze_wearable_samples",
    group_name="bronze",
    description="wearable.samples.v1 as consumed (Faust lake sink); partitions date, source",
    metadata={"path": BRONZE_WEARABLE_SAMPLES},
    partitions_def=daily,
)
bronze_game_events = dg.AssetSpec(
    "bronze_game_events",
    group_name="bronze",
    description="game.events.v1 as consumed (Faust lake sink); partitions date, game_id",
    metadata={"path": BRONZE_GAME_EVENTS},
    partitions_def=daily,
)
bronze_reward_commands = dg.AssetSpec(
    "bronze_reward_commands",
    group_name="bronze",
    description="rewards.commands.v1 as consumed (Faust lake sink); partitions date (UTC day "
    "of issued_at), game_id",
    metadata={"path": BRONZE_REWARD_COMMANDS},
    partitions_def=daily,
)


def _day(context: AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def _bronze_freshness(lake: Lake, table: str, asset: dg.AssetKey) -> dg.AssetCheckResult:
    """Warn when the bronze table got no Delta commit for a while (is the sink running?).

    Read with delta-rs, the library that writes bronze: one look at the log's last commit
    in this process, no Spark job."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    uri = table_uri(lake.root, table)
    try:
        history = DeltaTable(uri, storage_options=storage_options(uri)).history(1)
    except TableNotFoundError:
        return dg.AssetCheckResult(
            asset_key=asset,
            check_name="bronze_fresh",
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"{table} does not exist yet",
        )
    last = datetime.fromtimestamp(history[0]["timestamp"] / 1000, UTC)
    age_h = (datetime.now(UTC) - last).total_seconds() / 3600
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name="bronze_fresh",
        passed=age_h <= BRONZE_STALE_AFTER_HOURS,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"last_commit": last.isoformat(), "age_hours": round(age_h, 2)},
    )


BRONZE_TABLE_OF = {
    bronze_wearable_samples.key: BRONZE_WEARABLE_SAMPLES,
    bronze_game_events.key: BRONZE_GAME_EVENTS,
    bronze_reward_commands.key: BRONZE_REWARD_COMMANDS,
}


@dg.multi_asset_check(
    name="bronze_freshness",
    specs=[
        dg.AssetCheckSpec(
            "bronze_fresh",
            asset=key,
            description=f"{table} got a commit in the last {BRONZE_STALE_AFTER_HOURS} h "
            "(is the Faust lake sink running?)",
        )
        for key, table in BRONZE_TABLE_OF.items()
    ],
    can_subset=True,
)
def bronze_freshness(
    context: dg.AssetCheckExecutionContext, lake: Lake
) -> Iterator[dg.AssetCheckResult]:
    """``bronze_fresh`` on each bronze asset itself (external assets: the check reads the
    table's Delta log, it materializes nothing). One step for the three tables: in a run
    launched by the daemon every step is a process of its own (~10 s to start)."""
    for check in sorted(context.selected_asset_check_keys, key=lambda k: k.asset_key.path):
        yield _bronze_freshness(lake, BRONZE_TABLE_OF[check.asset_key], check.asset_key)


def _delta_version(lake: Lake, table: str) -> dict[str, dg.MetadataValue]:
    """The Delta version just written and where the table is (delta-rs reads the log)."""
    from deltalake import DeltaTable

    uri = table_uri(lake.root, table)
    version = DeltaTable(uri, storage_options=storage_options(uri)).version()
    return {
        "delta_version": dg.MetadataValue.int(version),
        "delta_table": dg.MetadataValue.path(uri),
    }


def _day_over_everywhere() -> Column:
    """The end of a row's local day in the last time zone (UTC-12): its UTC midnight + 36 h."""
    return F.col("date").cast("timestamp") + F.expr("INTERVAL 36 HOURS")


def _bronze_profile(
    session: SparkSession, lake: Lake, table: str, key: str, day: date
) -> dict[str, int]:
    """Bronze rows of ``day``, how many distinct ``key`` they hold, and how many arrived
    after their day was over in every time zone (late rows: ingested 36 h or more after
    the day began in UTC; a wearable day is the user's local day, up to UTC-12): one Spark
    query."""
    bronze = read_day(session, table_uri(lake.root, table), day)
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


def _silver_asset(
    bronze: dg.AssetSpec,
    tables: tuple[str, str],
    key: str,
    build: Callable[[SparkSession, str, date], int],
    description: str,
) -> dg.AssetsDefinition:
    """The asset of the silver table (named after its path: ``silver_game_events``), rebuilt
    a day at a time from the bronze table by ``build``, one row per ``key``."""
    bronze_table, silver_table = tables
    name = silver_table.replace("/", "_")

    @dg.asset(
        name=name,
        group_name="silver",
        partitions_def=daily,
        deps=[bronze],
        description=description,
        metadata={"path": silver_table},
    )
    def silver(
        context: AssetExecutionContext, spark: SparkConnect, lake: Lake
    ) -> dg.MaterializeResult:
        session, day = spark.session(), _day(context)
        profile = _bronze_profile(session, lake, bronze_table, key, day)
        rows = build(session, lake.root, day)
        metadata: dict[str, Any] = {
            "rows": rows,
            "rows_in": profile["rows_in"],
            "rows_out": rows,
            "late_rows": profile["late_rows"],
            "dropped_by_dedupe": profile["rows_in"] - profile["distinct_keys"],
        }
        if profile["distinct_keys"] != rows:  # wearables: units silver does not know
            metadata["dropped_unknown_unit"] = profile["distinct_keys"] - rows
        if profile["rows_in"]:
            metadata.update(_delta_version(lake, silver_table))
        return dg.MaterializeResult(metadata=metadata)

    return silver


silver_wearable_samples = _silver_asset(
    bronze_wearable_samples,
    (BRONZE_WEARABLE_SAMPLES, SILVER_WEARABLE_SAMPLES),
    "sample_id",
    build_silver_wearable_samples,
    "One row per sample_id, canonical units (bpm, count, min, m, kcal)",
)
silver_game_events = _silver_asset(
    bronze_game_events,
    (BRONZE_GAME_EVENTS, SILVER_GAME_EVENTS),
    "event_id",
    build_silver_game_events,
    "One row per event_id",
)
silver_reward_commands = _silver_asset(
    bronze_reward_commands,
    (BRONZE_REWARD_COMMANDS, SILVER_REWARD_COMMANDS),
    "command_id",
    build_silver_reward_commands,
    "One row per command_id, by the UTC day it was issued",
)


def _gold_check_specs(asset: str, grain: tuple[str, ...]) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            "keys_not_null",
            asset=asset,
            blocking=True,
            description=f"no null in {', '.join(grain)}",
        ),
        dg.AssetCheckSpec(
            "no_duplicates",
            asset=asset,
            blocking=True,
            description=f"one row per {', '.join(grain)}",
        ),
        dg.AssetCheckSpec(
            "row_count_sane",
            asset=asset,
            blocking=True,
            description="one row per distinct key of its silver inputs that day",
        ),
    ]


def _gold_checks(
    asset: str, gold: DataFrame | None, silver: DataFrame | None, grain: tuple[str, ...]
) -> list[dg.AssetCheckResult]:
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
        dg.AssetCheckResult(
            asset_key=asset,
            check_name="keys_not_null",
            passed=null_keys == 0,
            metadata={"rows_with_null_key": null_keys},
        ),
        dg.AssetCheckResult(
            asset_key=asset,
            check_name="no_duplicates",
            passed=duplicates == 0,
            metadata={"duplicated_keys": duplicates},
        ),
        dg.AssetCheckResult(
            asset_key=asset,
            check_name="row_count_sane",
            passed=gold_rows == expected and (expected == 0 or gold_rows > 0),
            metadata={"gold_rows": gold_rows, "silver_keys": expected},
        ),
    ]


def _preview(gold: DataFrame | None, grain: tuple[str, ...]) -> dg.MetadataValue:
    """The first ``PREVIEW_ROWS`` rows of the day's gold, as a Markdown table."""
    if gold is None:
        return dg.MetadataValue.md("_no rows_")
    rows = gold.orderBy(*grain).limit(PREVIEW_ROWS).collect()
    if not rows:
        return dg.MetadataValue.md("_no rows_")
    columns = [c for c in gold.columns if c != "date"]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return dg.MetadataValue.md("\n".join(lines))


def _gold_metadata(
    lake: Lake,
    table: str,
    rows: int,
    gold: DataFrame | None,
    grain: tuple[str, ...],
    checks: list[dg.AssetCheckResult],
) -> dict[str, Any]:
    """Rows in (silver keys of the day, as the row-count check counted them), rows out, the
    Delta version written and a preview."""
    silver_keys = next(c for c in checks if c.check_name == "row_count_sane").metadata[
        "silver_keys"
    ]
    metadata: dict[str, Any] = {
        "rows": rows,
        "rows_in": silver_keys,
        "rows_out": rows,
        "preview": _preview(gold, grain),
    }
    if gold is not None:
        metadata.update(_delta_version(lake, table))
    return metadata


@dg.asset(
    group_name="gold",
    partitions_def=daily,
    deps=[silver_wearable_samples],
    check_specs=_gold_check_specs("gold_user_daily_health", ("date", "user_id")),
    description="Per user per day: steps, resting heart rate, sleep minutes, sample count",
    metadata={"path": GOLD_USER_DAILY_HEALTH},
)
def gold_user_daily_health(
    context: AssetExecutionContext, spark: SparkConnect, lake: Lake
) -> dg.MaterializeResult:
    session, day = spark.session(), _day(context)
    rows = build_gold_user_daily_health(session, lake.root, day)
    grain = ("date", "user_id")
    gold = read_day(session, table_uri(lake.root, GOLD_USER_DAILY_HEALTH), day)
    checks = _gold_checks(
        "gold_user_daily_health",
        gold,
        read_day(session, table_uri(lake.root, SILVER_WEARABLE_SAMPLES), day),
        grain,
    )
    return dg.MaterializeResult(
        metadata=_gold_metadata(lake, GOLD_USER_DAILY_HEALTH, rows, gold, grain, checks),
        check_results=checks,
    )


@dg.asset(
    group_name="gold",
    partitions_def=daily,
    deps=[silver_game_events, silver_reward_commands],
    check_specs=_gold_check_specs("gold_game_daily", ("date", "game_id")),
    description="Per game per day: events, sessions, matches, active players (events of "
    "that day), tokens minted and burned (reward commands issued that day)",
    metadata={"path": GOLD_GAME_DAILY},
)
def gold_game_daily(
    context: AssetExecutionContext, spark: SparkConnect, lake: Lake
) -> dg.MaterializeResult:
    session, day = spark.session(), _day(context)
    rows = build_gold_game_daily(session, lake.root, day)
    # A game has a row when it had events or reward commands that day.
    silver = [
        df.select("game_id")
        for df in (
            read_day(session, table_uri(lake.root, SILVER_GAME_EVENTS), day),
            read_day(session, table_uri(lake.root, SILVER_REWARD_COMMANDS), day),
        )
        if df is not None
    ]
    grain = ("date", "game_id")
    gold = read_day(session, table_uri(lake.root, GOLD_GAME_DAILY), day)
    checks = _gold_checks(
        "gold_game_daily",
        gold,
        reduce(DataFrame.unionByName, silver) if silver else None,
        grain,
    )
    return dg.MaterializeResult(
        metadata=_gold_metadata(lake, GOLD_GAME_DAILY, rows, gold, grain, checks),
        check_results=checks,
    )


def _load(
    context: AssetExecutionContext,
    lake: Lake,
    warehouse: WarehouseTarget,
    table: WarehouseTable,
) -> dg.MaterializeResult:
    day = _day(context)
    loaded = load_gold_day(lake.root, warehouse.warehouse(), table, day, warehouse.pseudonym_key)
    # Every gold row of the day is loaded (DELETE + COPY of the day): rows in = rows out.
    return dg.MaterializeResult(
        metadata={"rows": loaded, "rows_in": loaded, "rows_out": loaded, "table": table.name}
    )


@dg.asset(
    group_name="warehouse",
    partitions_def=daily,
    deps=[gold_user_daily_health],
    description="warehouse.user_daily_health: gold with user ids pseudonymized (HMAC-SHA256)",
)
def warehouse_user_daily_health(
    context: AssetExecutionContext, lake: Lake, warehouse: WarehouseTarget
) -> dg.MaterializeResult:
    return _load(context, lake, warehouse, USER_DAILY_HEALTH)


@dg.asset(
    group_name="warehouse",
    partitions_def=daily,
    deps=[gold_game_daily],
    description="warehouse.game_daily",
)
def warehouse_game_daily(
    context: AssetExecutionContext, lake: Lake, warehouse: WarehouseTarget
) -> dg.MaterializeResult:
    return _load(context, lake, warehouse, GAME_DAILY)


LAKEHOUSE_ASSETS = [
    bronze_wearable_samples,
    bronze_game_events,
    bronze_reward_commands,
    silver_wearable_samples,
    silver_game_events,
    silver_reward_commands,
    gold_user_daily_health,
    gold_game_daily,
    warehouse_user_daily_health,
    warehouse_game_daily,
]
BRONZE_CHECKS = [bronze_freshness]
# The daily job rebuilds silver → gold → warehouse and looks at bronze's freshness.
PIPELINE = dg.AssetSelection.groups("silver", "gold", "warehouse") | dg.AssetSelection.checks(
    *BRONZE_CHECKS
)
