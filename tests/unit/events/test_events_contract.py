"""GameEvent v1: round trips, the discriminated payload, skew correction, precise errors."""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.events.contracts import (
    GameEvent,
    IncomingGameEvent,
    MatchResult,
    Purchase,
    ScoreReached,
    TimeWindow,
    parse_game_event,
)
from core.platform.messages import DeadLetter

aware = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
player_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.:@-]{0,20}\Z")
points = st.integers(-(10**12), 10**12)
payloads = st.one_of(
    st.builds(
        MatchResult,
        outcome=st.sampled_from(["win", "loss", "draw"]),
        score=points,
        opponent=st.none() | player_ids,
    ),
    st.builds(ScoreReached, score=points),
    st.builds(
        Purchase,
        item=st.just("sword"),
        price=st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False),
        currency=st.sampled_from(["STRIDE", "USD", "EUR"]),
    ),
)


@st.composite
def game_events(draw) -> GameEvent:
    payload = draw(payloads)
    return GameEvent(
        event_id=draw(st.uuids()),
        game_id="tri",
        player_id=draw(player_ids),
        type=payload.type,
        payload=payload,
        occurred_at=draw(aware),
        sent_at=draw(st.none() | aware),
        received_at=draw(st.none() | aware),
    )


ANY_TIME = TimeWindow(datetime(1, 1, 1, tzinfo=UTC), timedelta.max)


def _score_posted(**times: str) -> IncomingGameEvent:
    """A posted score event with the given occurred_at / sent_at."""
    body = {"event_id": str(uuid.uuid4()), "player_id": "p1", "type": "score"}
    return IncomingGameEvent.model_validate({**body, "payload": {"score": 3}, **times})


@given(game_events())
def test_json_round_trip_is_lossless(event: GameEvent) -> None:
    assert parse_game_event(event.model_dump_json().encode(), ANY_TIME) == event


@pytest.mark.parametrize(
    ("occurred", "fragment"),
    [
        ("0001-01-01T00:00:00Z", "is before 2000-01-01"),
        ("1900-06-01T00:00:00Z", "is before 2000-01-01"),
        ("1970-01-01T00:00:00Z", "is the device clock set?"),
        ("9999-12-31T23:59:59Z", "after the server received it"),
    ],
)
def test_implausible_times_are_refused_at_the_door_and_in_the_stream(
    occurred: str, fragment: str
) -> None:
    received = datetime(2026, 12, 1, 12, tzinfo=UTC)
    incoming = _score_posted(occurred_at=occurred)
    with pytest.raises(ValueError, match=f"^occurred_at: .*{re.escape(fragment)}"):
        incoming.stamp("tri", received)
    raw = incoming.stamp("tri", received, ANY_TIME).model_dump_json().encode()
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_game_event(raw)  # a producer that bypasses the API: dead-lettered


def test_the_window_judges_the_skew_corrected_time() -> None:
    """A device clock a year behind with sent_at from the same clock is fine: corrected, the
    event happened a second before it was sent."""
    received = datetime(2026, 12, 1, 12, tzinfo=UTC)
    year_behind = received - timedelta(days=365 * 27)  # 1999 by the device
    incoming = _score_posted(
        occurred_at=(year_behind - timedelta(seconds=1)).isoformat(),
        sent_at=year_behind.isoformat(),
    )
    event = incoming.stamp("tri", received)
    assert event.corrected_occurred_at() == received - timedelta(seconds=1)
    ahead = TimeWindow(max_ahead=timedelta(hours=1))
    assert ahead.problem(received + timedelta(minutes=59), received) is None
    assert ahead.problem(received + timedelta(minutes=61), received) is not None


@given(game_events())
def test_payload_type_lives_once_at_the_top(event: GameEvent) -> None:
    wire = event.model_dump(mode="json")
    assert wire["type"] == event.payload.type
    assert "type" not in wire["payload"]


@given(aware, aware, aware)
def test_skew_correction_moves_occurred_at_by_the_client_clock_offset(
    occurred: datetime, sent: datetime, received: datetime
) -> None:
    event = GameEvent(
        event_id=uuid.uuid4(),
        game_id="tri",
        player_id="p1",
        type="score",
        payload=ScoreReached(score=1),
        occurred_at=occurred,
        sent_at=sent,
        received_at=received,
    )
    assert event.corrected_occurred_at() == occurred + (received - sent)
    assert event.occurred_at == occurred  # the raw time is kept


def test_a_skew_past_the_calendar_leaves_the_client_time() -> None:
    """Accepted by the contract, but the correction would overflow: the worker must neither
    crash on it nor stall its partition (the same batch would come back after a restart)."""
    occurred = datetime(9999, 12, 31, tzinfo=UTC)
    event = GameEvent(
        event_id=uuid.uuid4(),
        game_id="tri",
        player_id="p1",
        type="score",
        payload=ScoreReached(score=1),
        occurred_at=occurred,
        sent_at=datetime(1, 1, 2, tzinfo=UTC),
        received_at=datetime(2026, 11, 29, tzinfo=UTC),
    )
    assert event.corrected_occurred_at() == occurred


def test_without_sent_at_the_client_time_stands() -> None:
    occurred = datetime(2026, 11, 22, 1, tzinfo=UTC)
    event = GameEvent(
        event_id=uuid.uuid4(),
        game_id="tri",
        player_id="p1",
        type="score",
        payload=ScoreReached(score=1),
        occurred_at=occurred,
        received_at=occurred + timedelta(hours=3),
    )
    assert event.corrected_occurred_at() == occurred


def test_a_client_five_minutes_slow_is_corrected() -> None:
    server_now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    slow = timedelta(minutes=5)
    incoming = IncomingGameEvent.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "player_id": "p1",
            "type": "match_result",
            "payload": {"outcome": "win", "score": 3},
            "occurred_at": (server_now - slow - timedelta(seconds=10)).isoformat(),
            "sent_at": (server_now - slow).isoformat(),
        }
    )
    event = incoming.stamp("tri", server_now)
    assert event.corrected_occurred_at() == server_now - timedelta(seconds=10)


def _incoming(**changes) -> dict:
    body = {
        "event_id": str(uuid.uuid4()),
        "player_id": "p1",
        "type": "purchase",
        "payload": {"item": "sword", "price": "2.5", "currency": "STRIDE"},
        "occurred_at": "2026-11-22T01:00:00Z",
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"payload": {"item": "sword", "price": "-1", "currency": "STRIDE"}}, "payload.price"),
        ({"payload": {"item": "sword", "price": "1", "currency": "usd"}}, "payload.currency"),
        ({"type": "score"}, "payload.score"),
        ({"type": "teleport"}, "type"),
        ({"occurred_at": "2026-11-22T01:00:00"}, "occurred_at"),
        ({"player_id": "has space"}, "player_id"),
        ({"bonus": 1}, "bonus"),
    ],
)
def test_invalid_events_name_the_field(changes: dict, field: str) -> None:
    body = {**_incoming(**changes), "game_id": "tri"}
    with pytest.raises(ValueError) as info:
        parse_game_event(json.dumps(body).encode())
    fields = [part.split(":")[0] for part in str(info.value).split("; ")]
    assert field in fields, str(info.value)


def test_payload_type_must_agree_with_type() -> None:
    with pytest.raises(ValidationError, match="contradicts"):
        IncomingGameEvent.model_validate(
            _incoming(type="score", payload={"type": "purchase", "score": 1})
        )


def test_stamp_refuses_another_games_id() -> None:
    incoming = IncomingGameEvent.model_validate(_incoming(game_id="other"))
    with pytest.raises(ValueError, match="not the game of this API key"):
        incoming.stamp("tri", datetime.now(UTC))


def test_dead_letter_keeps_the_original_bytes() -> None:
    raw = b"\xff\x00 not json"
    letter = DeadLetter.of(
        "bad", topic="t", partition=1, offset=7, key=None, value=raw, failed_at=datetime.now(UTC)
    )
    again = DeadLetter.model_validate_json(letter.model_dump_json())
    assert again.original_value() == raw


def test_the_window_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from core.events.contracts import window_from_settings
    from core.platform.config import Settings

    monkeypatch.setenv("STRIDE_EVENTS_EARLIEST_OCCURRED_AT", "2020-03-01")
    monkeypatch.setenv("STRIDE_EVENTS_MAX_AHEAD_S", "60")
    window = window_from_settings(Settings(state_dir=tmp_path))
    assert window == TimeWindow(datetime(2020, 3, 1, tzinfo=UTC), timedelta(seconds=60))
