"""The sampler against PostgreSQL and Apache Kafka: per-minute figures from the platform's
tables and topics, one sample per (metric, minute) across restarts, gaps never zeros."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.metrics import catalog
from core.metrics.contracts import MetricSampleV1
from core.metrics.sampler import Sampler
from core.metrics.sources import KafkaTopicCounter
from core.platform.config import Settings
from tests.integration.metrics.conftest import minute_start

pytestmark = pytest.mark.slow


def add_game(engine: Engine) -> str:
    game = f"m{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO games (game_id, name, api_key_hash, api_key_prefix)"
                " VALUES (:g, :g, :h, 'x')"
            ),
            {"g": game, "h": uuid.uuid4().hex + uuid.uuid4().hex},
        )
    return game


def add_events(engine: Engine, game: str, at, players_types: list[tuple[str, str]]) -> None:
    with engine.begin() as conn:
        for offset, (player, kind) in enumerate(players_types):
            conn.execute(
                text(
                    "INSERT INTO processed_events (game_id, event_id, player_id, type, payload,"
                    " occurred_at, client_occurred_at, received_at, processed_at,"
                    " source_partition, source_offset)"
                    " VALUES (:g, :e, :p, :t, '{}', :at, :at, :at, :at, 0, :o)"
                ),
                {"g": game, "e": uuid.uuid4(), "p": player, "t": kind, "at": at, "o": offset},
            )


def stored(engine: Engine, key: str) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT s.minute, s.value FROM metric_samples s JOIN metrics m"
                    " ON m.id = s.metric_id WHERE m.key = :k ORDER BY s.minute"
                ),
                {"k": key},
            )
        ]


def test_one_sample_per_metric_per_minute_across_restarts(
    db_engine: Engine, kafka: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = kafka
    # A dead-letter topic of this test's own: the broker counts a minute's records by their
    # timestamps (ListOffsets), which holds for a topic written in time order; back-dated
    # records in a shared DLQ that other tests write now would be miscounted.
    dead_letters = f"metrics.test.dlq.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    admin.create_topics([NewTopic(dead_letters, 1, 1)])
    admin.close()
    monkeypatch.setattr(catalog, "DEAD_LETTER_TOPICS", (*catalog.DEAD_LETTER_TOPICS, dead_letters))
    game = add_game(db_engine)
    minute = minute_start(120)
    add_events(
        db_engine,
        game,
        minute + timedelta(seconds=5),
        [("ann", "match_result"), ("ann", "score"), ("bob", "match_result"), ("cy", "purchase")],
    )
    add_events(db_engine, game, minute + timedelta(seconds=59.9), [("dan", "session_start")])
    add_events(db_engine, game, minute + timedelta(minutes=1), [("eve", "score")])  # next minute

    dlq = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    for second in (1, 30, 59):
        ms = int((minute + timedelta(seconds=second)).timestamp() * 1000)
        dlq.send(dead_letters, b"not an event", timestamp_ms=ms)
    dlq.send(
        dead_letters,
        b"later",
        timestamp_ms=int((minute + timedelta(minutes=1)).timestamp() * 1000),
    )
    dlq.flush()
    dlq.close()

    published: list[MetricSampleV1] = []
    counter = KafkaTopicCounter(settings)
    try:
        sampler = Sampler(db_engine, settings, published.extend, counter)
        sampler.sync_catalog()
        first = {s.metric_key: s.value for s in sampler.sample(minute)}
        assert first[f"game.events/{game}"] == 5
        assert first[f"game.active_players/{game}"] == 4
        assert first[f"game.matches/{game}"] == 2
        assert first[f"kafka.dlq/{dead_letters}"] == 3  # not the one of the next minute
        assert stored(db_engine, f"game.events/{game}") == [(minute, 5.0)]

        # A late row of that minute, then a restarted sampler re-does the minute: the
        # first reading stays, and what it publishes again is the stored sample.
        add_events(db_engine, game, minute + timedelta(seconds=30), [("fay", "score")])
        restarted = Sampler(db_engine, settings, published.extend, counter)
        again = {s.metric_key: s.value for s in restarted.sample(minute)}
        assert again == first
        assert stored(db_engine, f"game.events/{game}") == [(minute, 5.0)]
        assert [s.value for s in published if s.metric_key == f"game.events/{game}"] == [5, 5]
        with db_engine.connect() as conn:
            rollup = conn.execute(
                text(
                    "SELECT r.count, r.total FROM metric_rollups_hourly r JOIN metrics m"
                    " ON m.id = r.metric_id WHERE m.key = :k AND r.hour = :h"
                ),
                {"k": f"game.events/{game}", "h": minute.replace(minute=0)},
            ).one()
        assert tuple(rollup) == (1, 5.0)  # added once into its hour, not again on the re-do
    finally:
        counter.close()


def test_a_restart_catches_up_within_the_backfill_and_leaves_older_minutes_as_gaps(
    db_engine: Engine, kafka: Settings
) -> None:
    settings = kafka.model_copy(update={"metrics_backfill_minutes": 3})
    game = add_game(db_engine)
    base = minute_start(0)  # once: every minute below from it (a run may cross a minute)
    last_done = base - timedelta(minutes=10)
    with db_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO metric_sampler_progress (name, last_minute) VALUES ('sampler', :m)"
                " ON CONFLICT (name) DO UPDATE SET last_minute = :m"
            ),
            {"m": last_done},
        )
    sampler = Sampler(db_engine, settings, lambda _s: None)  # no Kafka counter: tables only
    sampler.sync_catalog()
    now = base + timedelta(seconds=30)  # the minute before now is ready
    assert sampler.run_due(now) == 4  # minutes -4 .. -1 (backfill 3 before the last ready)
    minutes = [m for m, _ in stored(db_engine, f"game.events/{game}")]
    expected = [base - timedelta(minutes=i) for i in (4, 3, 2, 1)]
    assert minutes == expected  # -9 .. -5 are gaps: no rows
    assert all(v == 0 for _, v in stored(db_engine, f"game.events/{game}"))  # true zeros
    assert sampler.run_due(now) == 0  # done: a second run samples nothing
