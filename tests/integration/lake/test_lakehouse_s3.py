"""The lakehouse on an ``s3a://`` lake, end to end against a local S3 (moto server).

The lake sink's own agents (Faust test context, no broker) append bronze to S3 with
delta-rs, Spark (S3A) builds silver and gold there, the warehouse load stages Parquet in the
bucket and COPYs it into PostgreSQL. Only settings differ from the local-folder lake: the
same Spark server serves both (its S3A endpoint comes from ``STRIDE_LAKE_S3_*``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import anyio
import boto3
import psycopg
import pytest

from core.events.contracts import GameEvent
from core.lake.bronze import (
    BRONZE_GAME_EVENTS,
    BRONZE_REWARD_COMMANDS,
    BRONZE_WEARABLE_SAMPLES,
    GOLD_USER_DAILY_HEALTH,
    SILVER_WEARABLE_SAMPLES,
    days_appended_since,
    storage_options,
    table_uri,
)
from core.platform.config import Settings, get_settings
from core.rewards.commands import RewardRules, reward_commands_for
from core.warehouse.load import pseudonym
from core.wearables.contracts import Metric, WearableSample, WearableSource
from dagster_project.resources import resources_for
from dagster_project.run import materialize_day

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY = date(2025, 2, 14)
GAME = "s3-arena"
BUCKET = f"stride-lake-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def s3_lake(spark: Settings, postgres: Settings) -> Iterator[Settings]:
    """Settings whose lake is ``s3a://<bucket>/lake`` on the session's moto server."""
    import os

    assert spark.lake_s3_endpoint  # set by the spark fixture
    boto3.client(
        "s3",
        endpoint_url=spark.lake_s3_endpoint,
        region_name=spark.lake_s3_region,
        aws_access_key_id=spark.lake_s3_access_key_id.get_secret_value(),  # type: ignore[union-attr]
        aws_secret_access_key=spark.lake_s3_secret_access_key.get_secret_value(),  # type: ignore[union-attr]
    ).create_bucket(Bucket=BUCKET)
    os.environ["STRIDE_LAKE_URI"] = f"s3a://{BUCKET}/lake"
    get_settings.cache_clear()
    try:
        yield get_settings()
    finally:
        os.environ.pop("STRIDE_LAKE_URI", None)
        get_settings.cache_clear()


def _objects(settings: Settings, prefix: str) -> list[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=settings.lake_s3_endpoint,
        region_name=settings.lake_s3_region,
        aws_access_key_id=settings.lake_s3_access_key_id.get_secret_value(),  # type: ignore[union-attr]
        aws_secret_access_key=settings.lake_s3_secret_access_key.get_secret_value(),  # type: ignore[union-attr]
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _steps(user: str, value: float, minute: int, device: str) -> WearableSample:
    start = datetime(2025, 2, 14, 9, minute, tzinfo=UTC)
    return WearableSample.of(
        user_id=user,
        source=WearableSource.apple_health,
        metric=Metric.steps,
        value=value,
        unit="count",
        start=start,
        end=start + timedelta(minutes=1),
        device=device,
    )


def _event(kind: str, player: str, payload: dict) -> GameEvent:
    return GameEvent.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "game_id": GAME,
            "player_id": player,
            "type": kind,
            "payload": payload,
            "occurred_at": "2025-02-14T18:00:00Z",
        }
    )


def _sink_to_bronze(
    settings: Settings,
    topics: dict[str, list[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run the lake sink's agents on the messages of each bronze table's topic: their
    decode → rows → append_bronze."""
    from streams.agents import lake_sink

    # The agents read the lake root from their module's settings (read at import).
    monkeypatch.setattr(lake_sink, "settings", settings)

    async def run() -> None:
        from deltalake import DeltaTable

        def count(table: str) -> int:
            uri = table_uri(settings.lake_root, table)
            try:
                return DeltaTable(uri, storage_options=storage_options(uri)).count()
            except Exception:
                return 0

        agents = {
            BRONZE_WEARABLE_SAMPLES: lake_sink.sink_wearable_samples,
            BRONZE_GAME_EVENTS: lake_sink.sink_game_events,
            BRONZE_REWARD_COMMANDS: lake_sink.sink_reward_commands,
        }
        for table, values in topics.items():
            async with agents[table].test_context() as agent:
                for value in values:
                    await agent.put(value, key=b"k")
                with anyio.fail_after(30):
                    while count(table) < len(values):
                        await anyio.sleep(0.05)  # the agent commits on the same loop

    anyio.run(run)


def test_the_s3a_lake_runs_bronze_to_warehouse(
    s3_lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = s3_lake
    assert settings.lake_root == f"s3a://{BUCKET}/lake"
    duplicate = _steps("zoe", 300, 1, "iPhone")
    samples = [
        duplicate.model_dump_json().encode(),
        duplicate.model_dump_json().encode(),  # redelivered: silver keeps one
        _steps("zoe", 500, 2, "iPhone").model_dump_json().encode(),
        _steps("zoe", 650, 3, "Apple Watch").model_dump_json().encode(),
        _steps("yan", 42, 4, "iPhone").model_dump_json().encode(),
    ]
    events = [
        _event("session_start", "p1", {"session_id": "s1"}),
        _event("match_result", "p1", {"outcome": "win", "score": 120}),
        _event("purchase", "p2", {"item": "shield", "price": "1.5", "currency": "STRIDE"}),
    ]
    # What the scoring agent issues for them (the win mints 10, the purchase burns 1.5).
    issued_at = datetime(2025, 2, 14, 18, 0, 2, tzinfo=UTC)
    commands = [c for e in events for c in reward_commands_for(e, RewardRules(), issued_at)]
    _sink_to_bronze(
        settings,
        {
            BRONZE_WEARABLE_SAMPLES: samples,
            BRONZE_GAME_EVENTS: [e.model_dump_json().encode() for e in events],
            BRONZE_REWARD_COMMANDS: [c.model_dump_json().encode() for c in commands],
        },
        monkeypatch,
    )

    # The sensor's view of bronze, read from the S3 log.
    assert days_appended_since(settings.lake_root, BRONZE_WEARABLE_SAMPLES, -1)[1] == {DAY}

    outcome = materialize_day(DAY, resources_for(settings))
    assert outcome.success and not outcome.failed_checks, outcome
    assert outcome.rows["silver_wearable_samples"] == 4
    assert outcome.rows["gold_user_daily_health"] == 2

    dsn = settings.warehouse_db_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        health = conn.execute(
            "SELECT user_key, steps, sample_count FROM user_daily_health WHERE date = %s "
            "ORDER BY steps",
            (DAY,),
        ).fetchall()
        games = conn.execute(
            "SELECT events, sessions, matches, active_players, tokens_minted, tokens_burned "
            "FROM game_daily WHERE date = %s AND game_id = %s",
            (DAY, GAME),
        ).fetchall()
    key = settings.pseudonym_key
    # zoe: iPhone 300 + 500 = 800 beats the Watch's 650 (largest device wins).
    assert health == [(pseudonym("yan", key), 42, 1), (pseudonym("zoe", key), 800, 3)]
    assert games == [(3, 1, 1, 2, Decimal("10"), Decimal("1.5"))]

    # Every layer is in the bucket, nothing in the local lake folder.
    keys = _objects(settings, "lake/")
    for table in (BRONZE_WEARABLE_SAMPLES, SILVER_WEARABLE_SAMPLES, GOLD_USER_DAILY_HEALTH):
        assert any(k.startswith(f"lake/{table}/_delta_log/") for k in keys), table
        assert any(k.startswith(f"lake/{table}/date=") for k in keys), table
    stage = f"lake/stage/warehouse/user_daily_health/date={DAY.isoformat()}/part-00000.parquet"
    assert stage in keys
    assert not list((settings.state_dir / "lake").rglob(f"date={DAY.isoformat()}"))


def test_spark_maintenance_on_the_s3a_lake(s3_lake: Settings) -> None:
    """OPTIMIZE and VACUUM through S3A on a table Spark wrote to the bucket."""
    from spark_jobs.maintenance import maintain_table
    from spark_jobs.session import read_day, replace_day, spark_session

    spark = spark_session(s3_lake.spark_url)
    path = table_uri(s3_lake.lake_root, "scratch/maintenance")
    rows = spark.range(300).selectExpr("id", f"DATE'{DAY.isoformat()}' AS date").repartition(3)
    replace_day(rows, path, DAY, ["date"])
    replace_day(rows, path, DAY, ["date"])  # a rebuild: three new files, three removed

    report = maintain_table(spark, path, retention_hours=168)

    assert (report.files_before, report.files_after) == (3, 1)
    assert (report.files_compacted, report.files_written) == (3, 1)
    assert report.files_vacuumed == 0  # removed files are kept for the retention (7 days)
    parquet = _objects(s3_lake, "lake/scratch/maintenance/date=")
    assert len(parquet) == 7  # 3 + 3 removed, 1 live
    # The s3:// name of the same table reaches Spark as s3a:// (spark_jobs.session).
    same_table = path.replace("s3a://", "s3://")
    assert read_day(spark, same_table, DAY).count() == 300  # type: ignore[union-attr]
