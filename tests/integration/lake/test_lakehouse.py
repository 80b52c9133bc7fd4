"""Upload → Kafka → Faust lake sink → bronze Delta → Dagster/Spark → warehouse, on real services.

One module-scoped flow (the expensive part) feeds several assertions: the warehouse rows
are exactly the expected aggregates, rerunning a day changes nothing, and a failing
blocking check on gold stops the warehouse load. Game events go through the scoring agent
too: its reward commands (rewards.commands.v1) reach bronze through the lake sink, and
game_daily's tokens are theirs, on the day they were issued.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest
from deltalake import DeltaTable
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.identity.app_users import create_app_user
from core.identity.game_keys import create_game
from core.lake.bronze import (
    BRONZE_GAME_EVENTS,
    BRONZE_REWARD_COMMANDS,
    BRONZE_WEARABLE_SAMPLES,
    GOLD_USER_DAILY_HEALTH,
    Consumed,
    append_bronze,
    table_uri,
    wearable_rows,
)
from core.platform.config import Settings
from core.warehouse.load import pseudonym
from core.wearables.contracts import Metric, WearableSample, WearableSource
from dagster_project.resources import resources_for
from dagster_project.run import materialize_day

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wearables"
WEARABLE_ROWS = 18  # Fitbit: 4 beats + 1 resting + 3 step buckets; Apple Health: 10 records
GAME_ROWS = 4
REWARD_COMMANDS = 2  # the win mints, the purchase in STRIDE burns
DAYS = [date(2024, 3, 10), date(2024, 6, 1), date(2024, 11, 2), date(2024, 11, 3)]


GAME = "lakehouse-arena"
USERS = ("ana", "ben")
# Other tests post to the same topics: count only what this module uploaded.
OURS = {
    BRONZE_WEARABLE_SAMPLES: ("user_id", "in", USERS),
    BRONZE_GAME_EVENTS: ("game_id", "=", GAME),
    BRONZE_REWARD_COMMANDS: ("game_id", "=", GAME),
}


def _bronze_rows(settings: Settings, table: str) -> int:
    try:
        dt = DeltaTable(table_uri(settings.lake_root, table))
    except Exception:
        return 0
    return dt.to_pyarrow_table(filters=[OURS[table]]).num_rows


def _wait_for_bronze(settings: Settings, expected: dict[str, int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = {t: _bronze_rows(settings, t) for t in expected}
        if counts == expected:
            return
        time.sleep(0.2)  # readiness polling of the sink, bounded by the deadline
    raise AssertionError(f"bronze has {counts}, expected {expected}")


def _warehouse(settings: Settings, query: str) -> list[tuple]:
    dsn = settings.warehouse_db_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


HEALTH_QUERY = (
    "SELECT date, user_key, steps, resting_heart_rate, sleep_minutes, sample_count "
    "FROM user_daily_health WHERE date IN ('2024-03-10', '2024-06-01', '2024-11-02', "
    "'2024-11-03') ORDER BY date, user_key"
)
GAME_QUERY = (
    "SELECT date, game_id, events, sessions, matches, active_players, tokens_minted, "
    f"tokens_burned FROM game_daily WHERE game_id = '{GAME}' ORDER BY date"
)


@pytest.fixture(scope="module")
def lakehouse(spark: Settings, live_api: str, lake_worker: Settings, db_engine: Engine) -> Settings:
    """Everything uploaded through the API, sunk to bronze, and materialized once (spark
    first: its JVM warms up while the API and the worker start)."""
    settings = spark
    with Session(db_engine) as session:
        ana = create_app_user(session, "ana").token
        ben = create_app_user(session, "ben").token
        game_key = create_game(session, "Lakehouse Arena", GAME).api_key
        session.commit()

    with httpx.Client(base_url=live_api, timeout=30) as client:
        fitbit = {
            "timezone": "America/Los_Angeles",
            "device": "Charge 6",
            "documents": [
                json.loads((FIXTURES / "fitbit_heart_intraday_dst.json").read_text()),
                json.loads((FIXTURES / "fitbit_steps_intraday_15min.json").read_text()),
            ],
        }
        answer = client.post(
            "/v1/wearables/fitbit", json=fitbit, headers={"Authorization": f"Bearer {ana}"}
        )
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] == 8

        export = (FIXTURES / "apple_health_export.xml").read_bytes()
        answer = client.post(
            "/v1/wearables/apple_health",
            files={"file": ("export.xml", export, "application/xml")},
            headers={"Authorization": f"Bearer {ben}"},
        )
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] == 10

        def event(kind: str, player: str, payload: dict) -> dict:
            return {
                "event_id": str(uuid.uuid4()),
                "player_id": player,
                "type": kind,
                "payload": payload,
                "occurred_at": "2024-11-02T18:00:00Z",
            }

        events = [
            event("session_start", "p1", {"session_id": "s1"}),
            event("match_result", "p1", {"outcome": "win", "score": 120}),
            event("match_result", "p2", {"outcome": "loss", "score": 80}),
            event("purchase", "p2", {"item": "sword", "price": "2.5", "currency": "STRIDE"}),
        ]
        answer = client.post(
            "/v1/events/batch", json={"events": events}, headers={"X-Api-Key": game_key}
        )
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] == GAME_ROWS

    _wait_for_bronze(
        settings,
        {
            BRONZE_WEARABLE_SAMPLES: WEARABLE_ROWS,
            BRONZE_GAME_EVENTS: GAME_ROWS,
            BRONZE_REWARD_COMMANDS: REWARD_COMMANDS,
        },
    )
    resources = resources_for(settings)
    for day in DAYS + _issue_days(settings):
        outcome = materialize_day(day, resources)
        assert outcome.success and not outcome.failed_checks, outcome
    return settings


def _issue_days(settings: Settings) -> list[date]:
    """The UTC days our reward commands were issued (today, as the worker issued them)."""
    dt = DeltaTable(table_uri(settings.lake_root, BRONZE_REWARD_COMMANDS))
    rows = dt.to_pyarrow_table(columns=["date"], filters=[OURS[BRONZE_REWARD_COMMANDS]])
    return sorted(set(rows.column("date").to_pylist()))


def _ledger(db_engine: Engine) -> dict[date, tuple[Decimal, Decimal]]:
    """What the scoring agent issued for the game, per UTC day of issue (PostgreSQL)."""
    query = text(
        "SELECT (issued_at AT TIME ZONE 'UTC')::date AS day, "
        "coalesce(sum(amount) FILTER (WHERE action = 'mint'), 0), "
        "coalesce(sum(amount) FILTER (WHERE action = 'burn'), 0) "
        "FROM reward_commands WHERE game_id = :game GROUP BY 1"
    )
    with db_engine.connect() as conn:
        return {
            day: (minted, burned) for day, minted, burned in conn.execute(query, {"game": GAME})
        }


def test_warehouse_rows_are_exactly_the_daily_aggregates(
    lakehouse: Settings, db_engine: Engine
) -> None:
    key = lakehouse.pseudonym_key
    ana, ben = pseudonym("ana", key), pseudonym("ben", key)
    expected = sorted(
        [
            # DST day in Los Angeles: 4 beats (2 in the skipped hour dropped) + resting rate.
            (date(2024, 3, 10), ana, None, 61.0, None, 5),
            (date(2024, 6, 1), ana, 1542, None, None, 3),
            # Phone 800 and Watch 760 overlap, a manual entry 1200: the largest device wins;
            # the record exported twice counts once.
            (date(2024, 11, 2), ben, 1200, None, None, 4),
            # Sleep ending that morning (150 + 40 min across the DST change), resting 54.
            (date(2024, 11, 3), ben, None, 54.0, 190.0, 5),
        ]
    )
    assert _warehouse(lakehouse, HEALTH_QUERY) == expected
    # Tokens are a ledger by issue day: the events' day has none, the day the scoring
    # agent issued the commands (today) has their amounts and no events.
    ledger = _ledger(db_engine)
    assert sum(m for m, _ in ledger.values()) == Decimal(10)
    assert sum(b for _, b in ledger.values()) == Decimal("2.5")
    assert sorted(ledger) == _issue_days(lakehouse)
    assert _warehouse(lakehouse, GAME_QUERY) == [
        (date(2024, 11, 2), GAME, 4, 1, 2, 2, Decimal(0), Decimal(0)),
        *(
            (day, GAME, 0, 0, 0, 0, minted, burned)
            for day, (minted, burned) in sorted(ledger.items())
        ),
    ]
    # Raw health values and real user ids never reach the warehouse.
    columns = _warehouse(
        lakehouse,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'user_daily_health'",
    )
    assert "user_id" not in {c for (c,) in columns}


def test_rerunning_a_partition_changes_nothing(lakehouse: Settings) -> None:
    before_wh = _warehouse(lakehouse, HEALTH_QUERY), _warehouse(lakehouse, GAME_QUERY)
    gold = DeltaTable(table_uri(lakehouse.lake_root, GOLD_USER_DAILY_HEALTH))
    before_gold = sorted(map(str, gold.to_pyarrow_table().to_pylist()))
    outcome = materialize_day(date(2024, 11, 2), resources_for(lakehouse))
    assert outcome.success and not outcome.failed_checks
    assert (_warehouse(lakehouse, HEALTH_QUERY), _warehouse(lakehouse, GAME_QUERY)) == before_wh
    gold = DeltaTable(table_uri(lakehouse.lake_root, GOLD_USER_DAILY_HEALTH))
    assert sorted(map(str, gold.to_pyarrow_table().to_pylist())) == before_gold


def test_late_data_lands_in_its_day_and_the_rebuild_picks_it_up(
    lakehouse: Settings, live_api: str, db_engine: Engine
) -> None:
    from core.identity.app_users import rotate_token
    from core.lake.bronze import days_written_since

    with Session(db_engine) as session:
        token = rotate_token(session, "ana").token
        session.commit()
    version, _ = days_written_since(lakehouse.lake_root, BRONZE_WEARABLE_SAMPLES, -1)
    late = {
        "activities-steps": [{"dateTime": "2024-06-01", "value": "100"}],
        "activities-steps-intraday": {
            "dataset": [{"time": "18:00:00", "value": 100}],
            "datasetInterval": 15,
            "datasetType": "minute",
        },
    }
    with httpx.Client(base_url=live_api, timeout=30) as client:
        answer = client.post(
            "/v1/wearables/fitbit",
            json={"timezone": "America/Los_Angeles", "device": "Charge 6", "documents": [late]},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 202, answer.text
    _wait_for_bronze(lakehouse, {BRONZE_WEARABLE_SAMPLES: WEARABLE_ROWS + 1})
    _, days = days_written_since(lakehouse.lake_root, BRONZE_WEARABLE_SAMPLES, version)
    assert date(2024, 6, 1) in days  # what the sensor turns into a run of that day
    outcome = materialize_day(date(2024, 6, 1), resources_for(lakehouse))
    assert outcome.success and not outcome.failed_checks
    ana = pseudonym("ana", lakehouse.pseudonym_key)
    rows = [r for r in _warehouse(lakehouse, HEALTH_QUERY) if r[1] == ana]
    assert (date(2024, 6, 1), ana, 1642, None, None, 4) in rows


def test_a_failing_check_stops_the_warehouse_load(lakehouse: Settings) -> None:
    """A bronze row without a user (written around the API) makes gold fail keys_not_null."""
    day = date(2024, 11, 3)
    before = _warehouse(lakehouse, HEALTH_QUERY)
    start = datetime(2024, 11, 3, 12, tzinfo=UTC)
    sample = WearableSample.of(
        user_id="ghost",
        source=WearableSource.fitbit,
        metric=Metric.steps,
        value=10,
        unit="count",
        start=start,
        end=start,
    )
    rows = wearable_rows([Consumed(sample, 0, 0, start)], datetime.now(UTC))
    rows = rows.set_column(1, "user_id", pyarrow_nulls(rows.num_rows))
    append_bronze(lakehouse.lake_root, BRONZE_WEARABLE_SAMPLES, rows)

    outcome = materialize_day(day, resources_for(lakehouse))
    assert "gold_user_daily_health:keys_not_null" in outcome.failed_checks
    assert "warehouse_user_daily_health" in outcome.skipped
    assert "gold_user_daily_health" in outcome.materialized  # gold itself was rebuilt
    assert _warehouse(lakehouse, HEALTH_QUERY) == before


def pyarrow_nulls(n: int):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    return pa.nulls(n, pa.string())


def test_wearable_upload_errors(live_api: str, db_engine: Engine) -> None:
    with Session(db_engine) as session:
        token = create_app_user(session, "cleo").token
        session.commit()
    doc = json.loads((FIXTURES / "fitbit_steps_intraday_15min.json").read_text())
    body = {"utc_offset_ms": 0, "documents": [doc]}
    with httpx.Client(base_url=live_api, timeout=30) as client:
        missing = client.post("/v1/wearables/fitbit", json=body)
        assert missing.status_code == 401
        assert "Bearer" in missing.json()["detail"]
        wrong = client.post(
            "/v1/wearables/fitbit", json=body, headers={"Authorization": "Bearer su_nope"}
        )
        assert wrong.status_code == 403
        auth = {"Authorization": f"Bearer {token}"}
        other = client.post("/v1/wearables/fitbit", json={**body, "user_id": "ana"}, headers=auth)
        assert other.status_code == 403
        assert "only uploads their own data" in other.json()["detail"]
        bad = client.post(
            "/v1/wearables/apple_health",
            content=(FIXTURES / "apple_health_bad_date.xml").read_bytes(),
            headers={**auth, "Content-Type": "application/xml"},
        )
        assert bad.status_code == 422
        assert bad.json()["detail"].startswith("line 26, Record #4, attribute startDate:")
        ios16 = client.post(  # Apple's malformed iOS 16 DTD: parsed, not refused
            "/v1/wearables/apple_health",
            content=(FIXTURES / "apple_health_export_ios16.xml").read_bytes(),
            headers={**auth, "Content-Type": "application/xml"},
        )
        assert ios16.status_code == 202, ios16.text
        assert ios16.json() == {"accepted": 3, "skipped": {}}
        bomb = client.post(
            "/v1/wearables/apple_health",
            content=b'<?xml version="1.0"?>\n<!DOCTYPE HealthData [<!ENTITY e "x">]>\n'
            b'<HealthData><Record sourceName="&e;"/></HealthData>',
            headers={**auth, "Content-Type": "application/xml"},
        )
        assert bomb.status_code == 422
        assert "declares an entity" in bomb.json()["detail"]
        assert bomb.json()["detail"].endswith("Nothing from this upload was ingested.")
        zones = client.post(
            "/v1/wearables/fitbit",
            json={"timezone": "Mars/Olympus", "documents": [doc]},
            headers=auth,
        )
        assert zones.status_code == 422
        assert "unknown time zone 'Mars/Olympus'" in zones.text


def test_oura_and_audio_uploads(live_api: str, db_engine: Engine, tmp_path: Path) -> None:
    import hashlib
    import wave
    from urllib.parse import unquote, urlparse

    with Session(db_engine) as session:
        token = create_app_user(session, "dara").token
        session.commit()
    auth = {"Authorization": f"Bearer {token}"}
    oura = {
        name: json.loads((FIXTURES / f"oura_{name}.json").read_text())
        for name in ("daily_sleep", "sleep", "heartrate")
    }
    recording = tmp_path / "note.wav"
    with wave.open(str(recording), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x01\x00" * 16000)
    with httpx.Client(base_url=live_api, timeout=30) as client:
        answer = client.post("/v1/wearables/oura", json={**oura, "device": "Ring 4"}, headers=auth)
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"accepted": 7, "skipped": {"oura:daily_sleep:no_score": 1}}

        answer = client.post(
            "/v1/wearables/audio",
            params={"recorded_at": "2024-05-01T08:00:00+02:00", "device": "iPhone"},
            content=recording.read_bytes(),
            headers={**auth, "Content-Type": "audio/wav"},
        )
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert (body["format"], body["duration_s"]) == ("wav", 2.0)
        assert body["sha256"] == hashlib.sha256(recording.read_bytes()).hexdigest()
        stored = Path(unquote(urlparse(body["uri"]).path))
        assert stored.read_bytes() == recording.read_bytes()
        assert stored.as_posix().endswith(f"/raw/audio/user_id=dara/{body['sha256']}.wav")

        not_audio = client.post(
            "/v1/wearables/audio", content=b"ID3\x04" + b"\x00" * 64, headers=auth
        )
        assert not_audio.status_code == 422
        assert "unsupported audio format" in not_audio.json()["detail"]
