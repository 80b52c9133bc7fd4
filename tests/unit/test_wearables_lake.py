"""Bronze rows from messages, and the sensor that turns new bronze files into day runs."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.events import GameEvent
from core.lake import (
    BRONZE_GAME_EVENTS,
    BRONZE_WEARABLE_SAMPLES,
    Consumed,
    append_bronze,
    days_written_since,
    game_event_rows,
    wearable_rows,
)
from core.rewards import RewardRules
from core.wearables.contracts import Metric, WearableSample, WearableSource
from core.wearables.parsers.common import zone

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


def test_game_rows_carry_reward_amounts_and_the_skew_corrected_day() -> None:
    win = game_event("match_result", {"outcome": "win", "score": 3}, "2026-11-21T10:00:00Z")
    buy = game_event(
        "purchase",
        {"item": "sword", "price": "2.5", "currency": "STRIDE"},
        # the client clock is 1 h behind: sent 22:59:30 by it, received 23:59:30
        "2026-11-21T23:30:00Z",
        sent_at="2026-11-21T22:59:30Z",
    )
    rows = game_event_rows(
        [Consumed(win, 0, 1, NOW), Consumed(buy, 0, 2, NOW)], RewardRules(), NOW
    ).to_pylist()
    assert (rows[0]["tokens_minted"], rows[0]["tokens_burned"]) == (Decimal(10), Decimal(0))
    assert rows[0]["match_outcome"] == "win"
    assert (rows[1]["tokens_minted"], rows[1]["tokens_burned"]) == (Decimal(0), Decimal("2.5"))
    assert rows[1]["date"] == date(2026, 11, 22)  # 23:30 + 1 h skew


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

    from core.config import get_settings

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
            game_event_rows([Consumed(event, 0, 0, NOW)], RewardRules(), NOW),
        )

        result = new_bronze_data(dg.build_sensor_context(cursor=None))
        assert [r.partition_key for r in result.run_requests] == ["2026-11-20", "2026-11-21"]
        again = new_bronze_data(dg.build_sensor_context(cursor=result.cursor))
        assert again.run_requests == []
    finally:
        get_settings.cache_clear()
