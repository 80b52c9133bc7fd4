"""Assets per lake table and warehouse table, partitioned by day, with blocking checks.

Bronze tables are written by the Faust lake sink, so they are external assets here.
Every other asset rebuilds exactly one day (``replaceWhere`` in the lake, DELETE + COPY in
the warehouse), so rerunning a partition changes nothing. Gold assets carry blocking
checks (keys not null, no duplicates, row-count sanity): when one fails, the warehouse
asset downstream is not run and the warehouse keeps its previous, good rows.
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime

import dagster as dg
from dagster import AssetExecutionContext

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
from dagster_project.resources import Lake, SparkSteps, WarehouseTarget

# Where the partitions start: STRIDE_LAKE_FIRST_DAY (read when the code location loads).
FIRST_DAY = LakeSettings().lake_first_day
BRONZE_STALE_AFTER_HOURS = 26
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


def _delta_version(uri: str) -> dg.MetadataValue:
    """The Delta version just written (delta-rs reads the table's log, in this process)."""
    from deltalake import DeltaTable

    return dg.MetadataValue.int(DeltaTable(uri, storage_options=storage_options(uri)).version())


def _run_step(
    context: AssetExecutionContext, spark_steps: SparkSteps, lake: Lake
) -> dg.MaterializeResult:
    """The asset's Spark step (``spark_jobs.steps``, named after the asset) for its day:
    over Spark Connect in this process or as an EMR Serverless job run, as the resource
    says; the metadata and check results are the same either way."""
    step = context.asset_key.to_user_string()
    run = spark_steps.run_step(context, step, _day(context), lake.root)
    metadata = dict(run.metadata)
    table = metadata.get("delta_table")
    if table is not None:  # the step wrote the table
        metadata["delta_version"] = _delta_version(str(table.value))
    return dg.MaterializeResult(metadata=metadata, check_results=run.checks)


def _silver_asset(bronze: dg.AssetSpec, silver_table: str, description: str) -> dg.AssetsDefinition:
    """The asset of the silver table (named after its path: ``silver_game_events``), rebuilt
    a day at a time from the bronze table by its step; metadata: rows in and out, late rows,
    rows dropped by the dedupe (and by unknown units), the Delta version written."""

    @dg.asset(
        name=silver_table.replace("/", "_"),
        group_name="silver",
        partitions_def=daily,
        deps=[bronze],
        description=description,
        metadata={"path": silver_table},
    )
    def silver(
        context: AssetExecutionContext, spark_steps: SparkSteps, lake: Lake
    ) -> dg.MaterializeResult:
        return _run_step(context, spark_steps, lake)

    return silver


silver_wearable_samples = _silver_asset(
    bronze_wearable_samples,
    SILVER_WEARABLE_SAMPLES,
    "One row per sample_id, canonical units (bpm, count, min, m, kcal)",
)
silver_game_events = _silver_asset(bronze_game_events, SILVER_GAME_EVENTS, "One row per event_id")
silver_reward_commands = _silver_asset(
    bronze_reward_commands,
    SILVER_REWARD_COMMANDS,
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


@dg.asset(
    group_name="gold",
    partitions_def=daily,
    deps=[silver_wearable_samples],
    check_specs=_gold_check_specs("gold_user_daily_health", ("date", "user_id")),
    description="Per user per day: steps, resting heart rate, sleep minutes, sample count",
    metadata={"path": GOLD_USER_DAILY_HEALTH},
)
def gold_user_daily_health(
    context: AssetExecutionContext, spark_steps: SparkSteps, lake: Lake
) -> dg.MaterializeResult:
    return _run_step(context, spark_steps, lake)


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
    context: AssetExecutionContext, spark_steps: SparkSteps, lake: Lake
) -> dg.MaterializeResult:
    return _run_step(context, spark_steps, lake)


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
