"""The Spark + Delta engine itself: how it is started, its readiness probe, Delta's own
maintenance commands through Spark Connect, tables shared with delta-rs, and gold's token
ledger (reward commands by issue day)."""

from __future__ import annotations

import re
import socket
import threading
import uuid
import zipfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from cli.spark_service import JAVA_MODULE_OPTIONS, pyspark_home, spark_command, spark_conf
from core.events.contracts import GameEvent
from core.lake.bronze import (
    BRONZE_GAME_EVENTS,
    BRONZE_REWARD_COMMANDS,
    GAME_EVENT_PARTITIONS,
    GOLD_GAME_DAILY,
    SILVER_GAME_EVENTS,
    TOKEN_TYPE,
    Consumed,
    append_bronze,
    game_event_rows,
    maintain_bronze,
    table_uri,
)
from core.platform.config import Settings
from core.rewards.commands import RewardAction, RewardRules, reward_commands_for
from spark_jobs.gold import build_gold_game_daily
from spark_jobs.maintenance import RETENTION_PROPERTY, maintain_table, table_history
from spark_jobs.session import read_day, replace_day, spark_problem, spark_session
from spark_jobs.silver import build_silver_game_events, build_silver_reward_commands
from tests.lake_helpers import bronze_game_events, bronze_reward_commands, reward_command

pytestmark = [pytest.mark.integration]

DAY = date(2026, 11, 21)


def test_the_java_options_are_those_of_sparks_launcher() -> None:
    """The server runs ``java`` directly: it must pass what spark-submit would on Java 17."""
    launcher = next((pyspark_home() / "jars").glob("spark-launcher_*.jar"))
    with zipfile.ZipFile(launcher) as jar:
        constants = jar.read("org/apache/spark/launcher/JavaModuleOptions.class")
    expected = {
        m.decode() for m in re.findall(rb"(?:--add-\w+|-XX|-D|--enable)[\w.=/+:-]+", constants)
    }
    assert expected and expected == set(JAVA_MODULE_OPTIONS)


def test_the_command_binds_loopback_and_loads_delta_and_s3a(spark: Settings) -> None:
    command = spark_command(spark)
    conf = spark_conf(spark)
    assert conf["spark.connect.grpc.binding.address"] == "127.0.0.1"
    assert conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == spark.lake_s3_endpoint
    classpath = command[command.index("-cp") + 1]
    names = [Path(p).name for p in classpath.split(":")]
    assert names[0] == "*" and any(n.startswith("delta-spark_2.13-4.3") for n in names)
    assert any(n.startswith("hadoop-aws-3.4.2") for n in names)
    # Credentials never on the command line (ps shows it to every user).
    secret = spark.lake_s3_secret_access_key.get_secret_value()  # type: ignore[union-attr]
    assert not any(secret in part for part in command)


def test_the_probe_makes_a_real_spark_connect_request(spark: Settings) -> None:
    assert spark_problem(spark.spark_host, spark.spark_port) is None

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    assert "not answering" in (spark_problem("127.0.0.1", port, timeout=1) or "")

    # Something else listening on the port (accepts, then hangs up) is not ready either.
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                conn.close()
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        problem = spark_problem("127.0.0.1", listener.getsockname()[1], timeout=1)
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert problem is not None and "not answering" in problem


def test_spark_reads_bronze_that_delta_rs_wrote_compacted_and_checkpointed(
    spark: Settings, tmp_path: Path
) -> None:
    root = str(tmp_path)
    for i in range(12):
        append_bronze(
            root, BRONZE_GAME_EVENTS, bronze_game_events(i * 10, 10, DAY, ("tri", "duo")[i % 2])
        )
    maintain_bronze(root, BRONZE_GAME_EVENTS)  # compaction commit, checkpoint, vacuum
    append_bronze(
        root, BRONZE_GAME_EVENTS, bronze_game_events(500, 3, DAY, "tri")
    )  # after the checkpoint

    session = spark_session(spark.spark_url)
    uri = table_uri(root, BRONZE_GAME_EVENTS)
    df = read_day(session, uri, DAY)
    assert df is not None
    types = dict(df.dtypes)
    assert (types["occurred_at"], types["kafka_offset"], types["date"]) == (
        "timestamp",
        "bigint",
        "date",
    )
    spark_rows = sorted(
        (r.event_id, r.kafka_offset) for r in df.select("event_id", "kafka_offset").collect()
    )
    arrow = DeltaTable(uri).to_pyarrow_table(columns=["event_id", "kafka_offset"]).to_pylist()
    assert spark_rows == sorted((r["event_id"], r["kafka_offset"]) for r in arrow)
    assert len(spark_rows) == 123
    detail = session.sql(f"DESCRIBE DETAIL delta.`{uri}`").first()
    assert (detail.minReaderVersion, detail.minWriterVersion) == (1, 2)  # type: ignore[union-attr]
    assert df.where("type = 'score'").count() == 123


def test_delta_rs_reads_what_spark_wrote_optimized_and_checkpointed(
    spark: Settings, tmp_path: Path
) -> None:
    """A Spark checkpoint (every 2 commits here, 10 by default), OPTIMIZE and VACUUM
    commits: delta-rs (the warehouse loader, the tests) still reads the table."""
    session = spark_session(spark.spark_url)
    path = str(tmp_path / "silver")
    for i in range(3):
        rows = session.range(i * 10, i * 10 + 10).selectExpr(
            "id", "CAST(id * 1.5 AS DECIMAL(38,18)) AS amount", f"DATE'{DAY.isoformat()}' AS date"
        )
        replace_day(rows, path, DAY, ["date"])
        if i == 0:
            session.sql(
                f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.checkpointInterval' = '2')"
            )
    assert (Path(path) / "_delta_log" / f"{2:020d}.checkpoint.parquet").exists()
    maintain_table(session, path, retention_hours=168)

    table = DeltaTable(path)
    assert (table.protocol().min_reader_version, table.protocol().min_writer_version) == (1, 2)
    data = table.to_pyarrow_table(partitions=[("date", "=", DAY.isoformat())]).to_pylist()
    assert sorted(r["id"] for r in data) == list(range(20, 30))
    assert {r["amount"] for r in data} == {Decimal(i) * Decimal("1.5") for i in range(20, 30)}
    # delta-rs appends to it and Spark sees the append.
    append = pa.table(
        {
            "id": pa.array([999], pa.int64()),
            "amount": pa.array([Decimal("1")], pa.decimal128(38, 18)),
            "date": pa.array([DAY], pa.date32()),
        }
    )
    from deltalake import write_deltalake

    write_deltalake(path, append, mode="append")
    assert read_day(session, path, DAY).count() == 11  # type: ignore[union-attr]


def _parquet(path: str) -> set[Path]:
    return {p for p in Path(path).rglob("*.parquet") if "_delta_log" not in p.parts}


def test_optimize_and_vacuum_through_spark_keep_the_rows(spark: Settings, tmp_path: Path) -> None:
    session = spark_session(spark.spark_url)
    path = str(tmp_path / "gold")
    day_rows = session.range(200).selectExpr("id", f"DATE'{DAY.isoformat()}' AS date")
    for _ in range(3):  # three rebuilds of the day, three files each
        replace_day(day_rows.repartition(3), path, DAY, ["date"])
    assert len(_parquet(path)) == 9

    report = maintain_table(session, path, retention_hours=168)

    assert (report.files_before, report.files_after) == (3, 1)
    assert (report.files_compacted, report.files_written) == (3, 1)
    assert report.files_vacuumed == 0 and len(_parquet(path)) == 10  # within the 7 days
    assert read_day(session, path, DAY).count() == 200  # type: ignore[union-attr]
    operations = [h["operation"] for h in table_history(session, path, 4)]
    assert operations == ["VACUUM END", "VACUUM START", "OPTIMIZE", "SET TBLPROPERTIES"]
    detail = session.sql(f"DESCRIBE DETAIL delta.`{path}`").first()
    assert detail.properties[RETENTION_PROPERTY] == "interval 168 hours"  # type: ignore[union-attr]

    again = maintain_table(session, path, retention_hours=168)
    assert (again.files_compacted, again.files_vacuumed) == (0, 0)
    assert again.version_after == again.version_before + 2  # VACUUM START/END only

    short = maintain_table(session, path, retention_hours=0)  # tests only: no grace period
    assert short.files_vacuumed == 9
    assert len(_parquet(path)) == 1
    assert read_day(session, path, DAY).count() == 200  # type: ignore[union-attr]


def test_maintaining_a_missing_table_is_reported_not_an_error(
    spark: Settings, tmp_path: Path
) -> None:
    report = maintain_table(
        spark_session(spark.spark_url), str(tmp_path / "none"), retention_hours=168
    )
    assert not report.exists


def test_the_silver_gold_maintenance_job_reports_each_table(
    spark: Settings, tmp_path: Path
) -> None:
    from dagster_project.maintenance import silver_gold_maintenance_job
    from dagster_project.resources import Lake, SparkConnect

    root = str(tmp_path)
    session = spark_session(spark.spark_url)
    rows = session.range(50).selectExpr("id", f"DATE'{DAY.isoformat()}' AS date")
    replace_day(rows.repartition(2), table_uri(root, SILVER_GAME_EVENTS), DAY, ["date"])
    with dg.instance_for_test() as instance:
        result = silver_gold_maintenance_job.execute_in_process(
            resources={"spark_steps": SparkConnect(url=spark.spark_url), "lake": Lake(root=root)},
            instance=instance,
        )
    assert result.success
    assert len(result.get_step_success_events()) == 5  # the four missing tables included
    observed = [
        e.asset_observation_data.asset_observation
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
    ]
    assert [o.asset_key.to_user_string() for o in observed] == ["silver_game_events"]
    metadata = observed[0].metadata
    assert (metadata["files_before"].value, metadata["files_after"].value) == (2, 1)


def test_replace_day_refuses_rows_of_another_day_and_empties_a_day(
    spark: Settings, tmp_path: Path
) -> None:
    session = spark_session(spark.spark_url)
    path = str(tmp_path / "days")
    other = date(2026, 11, 22)
    both = session.range(4).selectExpr("id", f"IF(id < 2, DATE'{DAY}', DATE'{other}') AS date")
    replace_day(both, path, DAY, ["date"])  # the first write creates the table
    stray = session.range(1).selectExpr("id", f"DATE'{other}' AS date")
    with pytest.raises(Exception, match=r"(?i)replaceWhere|does not conform|DELTA_REPLACE_WHERE"):
        replace_day(stray, path, DAY, ["date"])
    replace_day(stray.limit(0), path, DAY, ["date"])  # a rebuild with no rows empties the day
    assert read_day(session, path, DAY).count() == 0  # type: ignore[union-attr]
    assert read_day(session, path, other).count() == 2  # type: ignore[union-attr]


def test_only_a_missing_table_counts_as_missing(spark: Settings, tmp_path: Path) -> None:
    """Other errors are raised: taken for "no table", replace_day would append a day."""
    from spark_jobs.session import delta_exists

    session = spark_session(spark.spark_url)
    session.range(3).write.parquet(str(tmp_path / "plain"))
    session.range(3).write.format("delta").save(str(tmp_path / "delta"))
    assert not delta_exists(session, str(tmp_path / "nothing"))
    assert not delta_exists(session, str(tmp_path / "plain"))
    assert delta_exists(session, str(tmp_path / "delta"))
    with pytest.raises(Exception, match="No FileSystem for scheme"):
        delta_exists(session, "nosuchscheme://bucket/table")


def _build_game_day(session, root: str, day: date) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    """Silver (events, commands) and gold of ``day``; gold's rows by game."""
    build_silver_game_events(session, root, day)
    build_silver_reward_commands(session, root, day)
    build_gold_game_daily(session, root, day)
    gold = read_day(session, table_uri(root, GOLD_GAME_DAILY), day)
    assert gold is not None
    assert dict(gold.dtypes)["tokens_minted"] == "decimal(38,18)"
    return {
        r.game_id: (
            r.events,
            r.sessions,
            r.matches,
            r.active_players,
            r.tokens_minted,
            r.tokens_burned,
        )
        for r in gold.collect()
    }


def test_gold_tokens_are_the_reward_commands_issued_that_day(
    spark: Settings, tmp_path: Path
) -> None:
    root = str(tmp_path)
    session = spark_session(spark.spark_url)
    append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(0, 4, DAY, "tri"))
    append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(100, 2, DAY, "duo"))  # no commands
    noon = datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=UTC)
    win = reward_command("tri", RewardAction.mint, "10", noon, event=1)
    tri = [
        win,
        reward_command("tri", RewardAction.mint, "0.000000000000000001", noon, event=2),
        reward_command("tri", RewardAction.burn, "2.5", noon, event=3),
        # issued the next day (UTC): that day's ledger, not this one's
        reward_command("tri", RewardAction.mint, "7", noon + timedelta(hours=12), event=4),
    ]
    # A game with commands but no events that day (its events came the day before).
    solo = [
        reward_command(
            "solo", RewardAction.mint, "123456789012345678.123456789012345678", noon, event=9
        )
    ]
    append_bronze(root, BRONZE_REWARD_COMMANDS, bronze_reward_commands(tri + solo, noon))
    # The sink is at-least-once: the same command again, later (it must count once).
    append_bronze(
        root, BRONZE_REWARD_COMMANDS, bronze_reward_commands([win], noon, first_offset=50)
    )

    assert _build_game_day(session, root, DAY) == {
        "tri": (4, 0, 0, 3, Decimal("10.000000000000000001"), Decimal("2.5")),
        "duo": (2, 0, 0, 2, Decimal(0), Decimal(0)),
        "solo": (0, 0, 0, 0, Decimal("123456789012345678.123456789012345678"), Decimal(0)),
    }
    assert _build_game_day(session, root, DAY + timedelta(days=1)) == {
        "tri": (0, 0, 0, 0, Decimal(7), Decimal(0)),
    }


def _wins(first: int, n: int, occurred_at: datetime) -> list[GameEvent]:
    return [
        GameEvent.model_validate(
            {
                "event_id": str(uuid.UUID(int=first + i)),
                "game_id": "tri",
                "player_id": f"p{i}",
                "type": "match_result",
                "payload": {"outcome": "win", "score": 1},
                "occurred_at": occurred_at.isoformat(),
                "received_at": occurred_at.isoformat(),
            }
        )
        for i in range(n)
    ]


def _ingest(root: str, events: list[GameEvent], rules: RewardRules, issued_at: datetime) -> None:
    """What the worker does with ``events``: bronze rows of the events as they were, and of
    the commands the scoring agent issued for them under ``rules`` at ``issued_at``."""
    rows = game_event_rows([Consumed(e, 0, 0, issued_at) for e in events], issued_at)
    append_bronze(root, BRONZE_GAME_EVENTS, rows)
    commands = [c for e in events for c in reward_commands_for(e, rules, issued_at)]
    append_bronze(root, BRONZE_REWARD_COMMANDS, bronze_reward_commands(commands, issued_at))


def test_a_reward_rule_change_does_not_change_history(spark: Settings, tmp_path: Path) -> None:
    """Two wins under the old rules (10 a win), then the rule becomes 25 a win: the next day's
    wins and a late win of the first day are rewarded 25. Rebuilding both days after the
    change keeps the first day's 20 tokens; the late win counts on the day it was rewarded."""
    root = str(tmp_path)
    session = spark_session(spark.spark_url)
    first = datetime(DAY.year, DAY.month, DAY.day, 9, tzinfo=UTC)
    second = first + timedelta(days=1)
    _ingest(root, _wins(0, 2, first), RewardRules(mint_per_win=Decimal(10)), first)
    before = _build_game_day(session, root, DAY)
    assert before == {"tri": (2, 0, 2, 2, Decimal(20), Decimal(0))}

    new_rules = RewardRules(mint_per_win=Decimal(25))
    _ingest(root, _wins(10, 3, second), new_rules, second)
    _ingest(root, _wins(20, 1, first + timedelta(hours=1)), new_rules, second)  # late

    # the late win is the first day's event (p0 again) but the second day's reward
    assert _build_game_day(session, root, DAY) == {"tri": (3, 0, 3, 2, Decimal(20), Decimal(0))}
    assert _build_game_day(session, root, DAY + timedelta(days=1)) == {
        "tri": (3, 0, 3, 3, Decimal(100), Decimal(0))
    }


def test_an_older_lake_with_derived_token_columns_still_builds(
    spark: Settings, tmp_path: Path
) -> None:
    """bronze/game_events and silver/game_events written before bronze stored facts only
    carry ``tokens_minted``/``tokens_burned``: new rows append with nulls there, silver
    leaves them out, gold's tokens come from the reward commands alone."""
    from deltalake import write_deltalake

    root = str(tmp_path)
    session = spark_session(spark.spark_url)
    legacy = bronze_game_events(0, 3, DAY, "tri")
    for column in ("tokens_minted", "tokens_burned"):
        legacy = legacy.append_column(column, pa.array([Decimal("0.5")] * 3, TOKEN_TYPE))
    write_deltalake(table_uri(root, BRONZE_GAME_EVENTS), legacy, partition_by=GAME_EVENT_PARTITIONS)
    # silver/game_events as the old job wrote it, with the derived columns
    old_silver = read_day(session, table_uri(root, BRONZE_GAME_EVENTS), DAY)
    assert old_silver is not None
    replace_day(
        old_silver.drop("kafka_partition", "kafka_offset", "client_occurred_at"),
        table_uri(root, SILVER_GAME_EVENTS),
        DAY,
        ["date"],
    )
    append_bronze(root, BRONZE_GAME_EVENTS, bronze_game_events(10, 2, DAY, "tri"))
    noon = datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=UTC)
    win = reward_command("tri", RewardAction.mint, "10", noon, event=10)
    append_bronze(root, BRONZE_REWARD_COMMANDS, bronze_reward_commands([win], noon))

    assert _build_game_day(session, root, DAY) == {"tri": (5, 0, 0, 3, Decimal(10), Decimal(0))}
    silver = read_day(session, table_uri(root, SILVER_GAME_EVENTS), DAY)
    assert silver is not None
    assert silver.where("tokens_minted IS NOT NULL").count() == 0  # the old table's column
