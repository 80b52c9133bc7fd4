"""Bronze rows from messages, appends to older tables, and the sensor that turns new bronze
files into day runs."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from core.events.contracts import GameEvent, MatchResult
from core.lake.bronze import (
    BRONZE_GAME_EVENTS,
    BRONZE_REWARD_COMMANDS,
    BRONZE_WEARABLE_SAMPLES,
    GAME_EVENT_PARTITIONS,
    GAME_EVENTS_SCHEMA,
    REWARD_COMMANDS_SCHEMA,
    TOKEN_TYPE,
    WEARABLE_SAMPLES_SCHEMA,
    Consumed,
    append_bronze,
    days_written_since,
    game_event_rows,
    reward_command_rows,
    table_uri,
    wearable_rows,
    with_table_columns,
)
from core.rewards.commands import RewardAction, RewardCommand, RewardRules, reward_commands_for
from core.wearables.contracts import Metric, WearableSample, WearableSource
from core.wearables.parsers.common import zone
from tests.lake_helpers import reward_command

NOW = datetime(2026, 11, 22, 4, tzinfo=UTC)


def sample(start: datetime, metric: Metric = Metric.steps) -> WearableSample:
    return WearableSample.of(
        user_id="ana",
        source=WearableSource.fitbit,
        metric=metric,
        value=5,
        unit="count",
        start=start,
        end=start + timedelta(minutes=1),
    )


def game_event(kind: str, payload: dict, occurred_at: str, sent_at: str | None = None) -> GameEvent:
    return GameEvent.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "game_id": "tri",
            "player_id": "p1",
            "type": kind,
            "payload": payload,
            "occurred_at": occurred_at,
            "sent_at": sent_at,
            "received_at": "2026-11-21T23:59:30Z",
        }
    )


def test_wearable_rows_keep_the_users_day_and_offset() -> None:
    late_evening = datetime(2026, 11, 21, 23, 30, tzinfo=zone("America/Los_Angeles"))
    (row,) = wearable_rows([Consumed(sample(late_evening), 2, 41, NOW)], NOW).to_pylist()
    assert row["date"] == date(2026, 11, 21)  # the user's day, although UTC is the 22nd
    assert row["start_at"] == datetime(2026, 11, 22, 7, 30, tzinfo=UTC)
    assert row["utc_offset_minutes"] == -480
    assert (row["kafka_partition"], row["kafka_offset"]) == (2, 41)


def test_game_rows_are_the_events_facts_with_the_skew_corrected_day() -> None:
    win = game_event("match_result", {"outcome": "win", "score": 3}, "2026-11-21T10:00:00Z")
    buy = game_event(
        "purchase",
        {"item": "sword", "price": "2.5", "currency": "STRIDE"},
        # the client clock is 1 h behind: sent 22:59:30 by it, received 23:59:30
        "2026-11-21T23:30:00Z",
        sent_at="2026-11-21T22:59:30Z",
    )
    table = game_event_rows([Consumed(win, 0, 1, NOW), Consumed(buy, 0, 2, NOW)], NOW)
    rows = table.to_pylist()
    assert rows[0]["match_outcome"] == "win"
    assert rows[1]["date"] == date(2026, 11, 22)  # 23:30 + 1 h skew
    # What an event earns is a reward command's fact (bronze/reward_commands), not derived here.
    assert not {"tokens_minted", "tokens_burned"} & set(table.column_names)


def test_days_written_since_reads_new_files_only(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert days_written_since(root, BRONZE_WEARABLE_SAMPLES, -1) == (-1, set())
    first = datetime(2026, 11, 20, 8, tzinfo=UTC)
    append_bronze(
        root, BRONZE_WEARABLE_SAMPLES, wearable_rows([Consumed(sample(first), 0, 0, NOW)], NOW)
    )
    version, days = days_written_since(root, BRONZE_WEARABLE_SAMPLES, -1)
    assert (version, days) == (0, {date(2026, 11, 20)})
    # Late data for the 20th and new data for the 21st, in one commit.
    late = [sample(first + timedelta(hours=1)), sample(first + timedelta(days=1))]
    append_bronze(
        root,
        BRONZE_WEARABLE_SAMPLES,
        wearable_rows([Consumed(s, 0, i, NOW) for i, s in enumerate(late)], NOW),
    )
    assert days_written_since(root, BRONZE_WEARABLE_SAMPLES, version) == (
        1,
        {date(2026, 11, 20), date(2026, 11, 21)},
    )
    assert days_written_since(root, BRONZE_WEARABLE_SAMPLES, 1) == (1, set())


def test_sensor_requests_one_run_per_new_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    from core.platform.config import get_settings

    monkeypatch.setenv("STRIDE_STATE_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        from dagster_project.definitions import new_bronze_data

        root = get_settings().lake_root
        day = datetime(2026, 11, 20, 8, tzinfo=UTC)
        append_bronze(
            root, BRONZE_WEARABLE_SAMPLES, wearable_rows([Consumed(sample(day), 0, 0, NOW)], NOW)
        )
        event = game_event("score", {"score": 1}, "2026-11-21T10:00:00Z")
        append_bronze(
            root,
            BRONZE_GAME_EVENTS,
            game_event_rows([Consumed(event, 0, 0, NOW)], NOW),
        )
        (command,) = reward_commands_for(
            game_event("match_result", {"outcome": "win", "score": 1}, "2026-11-21T10:00:00Z"),
            RewardRules(),
            datetime(2026, 11, 22, 0, 5, tzinfo=UTC),  # issued the next day
        )
        append_bronze(
            root, BRONZE_REWARD_COMMANDS, reward_command_rows([Consumed(command, 0, 0, NOW)], NOW)
        )

        result = new_bronze_data(dg.build_sensor_context(cursor=None))
        assert [r.partition_key for r in result.run_requests] == [
            "2026-11-20",
            "2026-11-21",
            "2026-11-22",  # the reward command's issue day
        ]
        again = new_bronze_data(dg.build_sensor_context(cursor=result.cursor))
        assert again.run_requests == []
    finally:
        get_settings.cache_clear()


def mixed_batch() -> list[Consumed]:
    """Every event type, clocks in several zones (DST fold, half-hour offsets, before 1970),
    with and without ``sent_at`` and ``received_at``."""
    berlin, la, kolkata = zone("Europe/Berlin"), zone("America/Los_Angeles"), zone("Asia/Kolkata")
    specs = [
        ("match_result", {"outcome": "win", "score": 3}, datetime(2026, 11, 21, 23, 30, tzinfo=la)),
        ("match_result", {"outcome": "draw", "score": -2, "opponent": "bob"}, NOW),
        ("match_result", {"outcome": "loss", "score": 0, "match_id": "m 1/2#x"}, NOW),
        ("score", {"score": 7, "level": "l1"}, datetime(1969, 12, 31, 23, 59, tzinfo=UTC)),
        ("purchase", {"item": "sword", "price": "2.5", "currency": "STRIDE"}, NOW),
        ("purchase", {"item": "gem", "price": "3", "currency": "USD"}, NOW),
        (
            "purchase",
            {
                "item": "gold",
                "price": "123456789012345678.123456789012345678",
                "currency": "STRIDE",
            },
            NOW,
        ),
        ("achievement", {"achievement_id": "first", "points": 5}, NOW),
        ("session_start", {"session_id": "s1", "platform": "ios"}, NOW),
        (
            "session_end",
            {"session_id": "s1", "duration_s": 0.1 + 0.2},
            datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=berlin),
        ),
    ]
    items = []
    for i, (kind, payload, occurred) in enumerate(specs):
        body = {
            "event_id": str(uuid.UUID(int=i + 1)),
            "game_id": "tri",
            "player_id": f"p{i}",
            "type": kind,
            "payload": payload,
            "occurred_at": occurred.isoformat(),
        }
        if i % 3 != 0:  # a client clock 90 s behind the server's
            body["sent_at"] = (occurred + timedelta(minutes=5)).isoformat()
            body["received_at"] = (occurred + timedelta(minutes=6, seconds=30)).isoformat()
        elif i % 2 == 0:
            body["received_at"] = (occurred + timedelta(seconds=1)).astimezone(kolkata).isoformat()
        event = GameEvent.model_validate_json(json.dumps(body))  # as the sink decodes it
        record_time = datetime(2026, 11, 22, 3, 59, tzinfo=berlin)  # used without received_at
        items.append(Consumed(event, i % 4, 100 + i, record_time))
    return items


def test_game_rows_on_a_mixed_batch_are_the_events_in_utc() -> None:
    items = mixed_batch()
    table = game_event_rows(items, NOW)
    assert table.schema == GAME_EVENTS_SCHEMA
    expected = []
    for item in items:
        e = item.value
        assert isinstance(e, GameEvent)
        received = e.received_at or item.record_time
        occurred = e.occurred_at + (received - e.sent_at) if e.sent_at else e.occurred_at
        payload = e.payload
        expected.append(
            {
                "event_id": str(e.event_id),
                "game_id": "tri",
                "player_id": e.player_id,
                "type": e.type,
                "occurred_at": occurred.astimezone(UTC),
                "client_occurred_at": e.occurred_at.astimezone(UTC),
                "received_at": received.astimezone(UTC),
                "session_id": "s1" if e.type == "session_start" else None,
                "match_outcome": payload.outcome.value
                if isinstance(payload, MatchResult)
                else None,
                "score": e.score,
                "payload": payload.model_dump_json(),
                "date": occurred.astimezone(UTC).date(),
                "kafka_partition": item.partition,
                "kafka_offset": item.offset,
                "ingested_at": NOW,
            }
        )
    rows = table.to_pylist()
    assert rows == expected
    # Spot checks that the expectations above are not vacuous.
    assert rows[0]["date"] == date(2026, 11, 22)  # 23:30 in Los Angeles
    assert rows[3]["date"] == date(1969, 12, 31)
    assert json.loads(rows[6]["payload"])["price"] == "123456789012345678.123456789012345678"
    assert rows[9]["payload"] == '{"session_id":"s1","duration_s":0.30000000000000004}'
    assert rows[9]["client_occurred_at"] == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert rows[9]["received_at"] == datetime(2026, 11, 22, 2, 59, tzinfo=UTC)  # record time
    assert [r["occurred_at"] - r["client_occurred_at"] for r in rows[1:3]] == [
        timedelta(seconds=90)
    ] * 2


def test_game_rows_of_no_events_are_an_empty_table() -> None:
    table = game_event_rows([], NOW)
    assert (table.num_rows, table.schema) == (0, GAME_EVENTS_SCHEMA)
    assert reward_command_rows([], NOW).schema == REWARD_COMMANDS_SCHEMA


def test_wearable_rows_on_a_mixed_batch_are_the_samples_in_utc() -> None:
    berlin, kolkata = zone("Europe/Berlin"), zone("Asia/Kolkata")
    samples = [
        sample(datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=berlin)),  # the repeated hour
        sample(datetime(2026, 11, 21, 23, 50, tzinfo=kolkata), Metric.sleep),
        sample(datetime(2000, 1, 1, tzinfo=UTC), Metric.heart_rate),  # the earliest plausible
        WearableSample.of(
            user_id="bo",
            source=WearableSource.oura,
            metric=Metric.steps,
            value=1.5,
            unit="count",
            start=datetime(2026, 11, 21, 8, tzinfo=UTC),
            end=datetime(2026, 11, 21, 9, tzinfo=UTC),
            device="ring",
            attributes={"z": "1", "a": "2"},
        ),
    ]
    items = [Consumed(s, i, 10 + i, NOW) for i, s in enumerate(samples)]
    table = wearable_rows(items, NOW)
    assert table.schema == WEARABLE_SAMPLES_SCHEMA
    assert table.to_pylist() == [
        {
            "sample_id": str(s.sample_id),
            "user_id": s.user_id,
            "source": s.source.value,
            "metric": s.metric.value,
            "value": s.value,
            "unit": s.unit,
            "start_at": s.start.astimezone(UTC),
            "end_at": s.end.astimezone(UTC),
            "utc_offset_minutes": int(s.start.utcoffset().total_seconds() // 60),  # type: ignore[union-attr]
            "device": s.device,
            "attributes": json.dumps(s.attributes, sort_keys=True),
            "date": s.day,
            "kafka_partition": i,
            "kafka_offset": 10 + i,
            "ingested_at": NOW,
        }
        for i, s in enumerate(samples)
    ]
    rows = table.to_pylist()
    assert rows[0]["start_at"] == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert rows[0]["utc_offset_minutes"] == 60
    assert rows[1]["utc_offset_minutes"] == 330
    assert rows[1]["start_at"] == datetime(2026, 11, 21, 18, 20, tzinfo=UTC)
    assert rows[3]["attributes"] == '{"a": "2", "z": "1"}'


def command(amount: str, issued_at: datetime, action: RewardAction, event: int) -> RewardCommand:
    """A command as the scoring agent publishes it, decoded from its JSON as the sink does."""
    issued = reward_command("tri", action, amount, issued_at, event)
    return RewardCommand.model_validate_json(issued.model_dump_json())


def test_reward_command_rows_are_the_commands_as_issued() -> None:
    la = zone("America/Los_Angeles")
    items = [
        # 36 digits: kept exactly (a sum in Python's decimal context would keep 28)
        Consumed(
            command("123456789012345678.123456789012345678", NOW, RewardAction.burn, 1), 1, 7, NOW
        ),
        # 17:00 in Los Angeles is 01:00 UTC the next day: the row belongs to the UTC day
        Consumed(
            command("10", datetime(2026, 11, 21, 17, tzinfo=la), RewardAction.mint, 2), 3, 8, NOW
        ),
    ]
    table = reward_command_rows(items, NOW)
    assert table.schema == REWARD_COMMANDS_SCHEMA
    assert table.schema.field("amount").type == TOKEN_TYPE == pa.decimal128(38, 18)
    commands = [item.value for item in items]
    assert table.to_pylist() == [
        {
            "command_id": str(c.command_id),
            "action": c.action.value,
            "game_id": "tri",
            "player_id": c.player_id,
            "token": "STRIDE",
            "amount": c.amount,
            "reason": c.reason,
            "source_event_id": str(c.source_event_id),
            "issued_at": c.issued_at.astimezone(UTC),
            "date": c.issued_at.astimezone(UTC).date(),
            "kafka_partition": item.partition,
            "kafka_offset": item.offset,
            "ingested_at": NOW,
        }
        for item, c in zip(items, commands, strict=True)
        if isinstance(c, RewardCommand)
    ]
    rows = table.to_pylist()
    assert rows[0]["amount"] == Decimal("123456789012345678.123456789012345678")
    assert (rows[0]["action"], rows[1]["action"]) == ("burn", "mint")
    assert rows[1]["date"] == date(2026, 11, 22)
    assert rows[1]["issued_at"] == datetime(2026, 11, 22, 1, tzinfo=UTC)


def test_table_columns_fill_what_an_older_table_has_with_nulls() -> None:
    older = pa.schema(
        [
            ("event_id", pa.string()),
            ("tokens_minted", TOKEN_TYPE),
            ("score", pa.int64()),
            ("date", pa.date32()),
        ]
    )
    rows = pa.table({"event_id": ["e1", "e2"], "date": [date(2026, 11, 21)] * 2, "score": [1, 2]})
    filled = with_table_columns(rows, older)
    assert filled.schema == older  # in the table's order
    assert filled.column("tokens_minted").to_pylist() == [None, None]
    assert filled.column("score").to_pylist() == [1, 2]
    assert with_table_columns(rows, rows.schema) is rows  # nothing missing: untouched
    # A missing column that may not be null is not invented, and a column the table does
    # not know stays: both are left for the write to refuse.
    strict = pa.schema([pa.field("event_id", pa.string()), pa.field("n", pa.int64(), False)])
    assert with_table_columns(rows, strict) is rows


def test_appending_to_an_older_game_events_table_fills_its_legacy_columns(
    tmp_path: Path,
) -> None:
    """A lake whose bronze/game_events still has the reward amounts bronze used to derive:
    new rows append with nulls there; a new table never gets those columns."""
    old_lake, new_lake = str(tmp_path / "old"), str(tmp_path / "new")
    before = game_event("score", {"score": 1}, NOW.isoformat())
    legacy = game_event_rows([Consumed(before, 0, 0, NOW)], NOW)
    legacy = legacy.append_column("tokens_minted", pa.array([Decimal("0.5")], TOKEN_TYPE))
    legacy = legacy.append_column("tokens_burned", pa.array([Decimal(0)], TOKEN_TYPE))
    write_deltalake(
        table_uri(old_lake, BRONZE_GAME_EVENTS), legacy, partition_by=GAME_EVENT_PARTITIONS
    )

    rows = game_event_rows(
        [Consumed(game_event("score", {"score": 2}, NOW.isoformat()), 0, 1, NOW)], NOW
    )
    append_bronze(old_lake, BRONZE_GAME_EVENTS, rows)
    table = DeltaTable(table_uri(old_lake, BRONZE_GAME_EVENTS)).to_pyarrow_table()
    by_offset = {r["kafka_offset"]: r for r in table.to_pylist()}
    assert (by_offset[0]["tokens_minted"], by_offset[0]["tokens_burned"]) == (Decimal("0.5"), 0)
    assert (by_offset[1]["tokens_minted"], by_offset[1]["tokens_burned"]) == (None, None)
    assert by_offset[1]["score"] == 2

    append_bronze(new_lake, BRONZE_GAME_EVENTS, rows)
    fresh = pa.schema(DeltaTable(table_uri(new_lake, BRONZE_GAME_EVENTS)).schema().to_arrow())
    assert sorted(fresh.names) == sorted(GAME_EVENTS_SCHEMA.names)
