"""API -> Kafka -> Faust worker -> PostgreSQL, with the real services: totals, ranks, reward
commands, duplicates, replay from offset 0, dead letters and a non-Python client (kcat)."""

import json
import subprocess
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import text
from sqlalchemy.engine import Engine

from cli.services import SERVICES
from cli.stack import Stack
from core.leaderboards.definitions import create_leaderboard
from core.leaderboards.reads import rank_of, top
from core.leaderboards.rules import Operator
from core.platform.messages import DeadLetter
from core.platform.topics import GAME_EVENTS, GAME_EVENTS_DLQ, REWARD_COMMANDS
from core.rewards.commands import RewardCommand
from tests.streaming_helpers import (  # noqa: F401 - fixtures
    GameWithKey,
    api_fixture,
    game_fixture,
    match_event,
    post_batch,
    processed_count,
    purchase_event,
    score_event,
    totals,
    wait_for,
    wait_processed,
    worker_fixture,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]


def read_topic(settings, topic: str, match, count: int = 1, timeout: float = 30.0) -> list:
    """Values of ``topic`` (from offset 0) for which ``match(value)`` holds, once ``count``."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=500,
    )
    partitions = consumer.partitions_for_topic(topic) or set()
    consumer.assign([TopicPartition(topic, p) for p in partitions])
    found: list = []
    try:

        def more() -> list:
            for record in consumer:
                if match(record.value):
                    found.append(record.value)
            return found if len(found) >= count else []

        return wait_for(f"{count} matching records on {topic}", more, timeout)
    finally:
        consumer.close()


def test_posted_events_become_totals_ranks_and_reward_commands(
    api: httpx.Client, game: GameWithKey, db_engine: Engine, stack_settings
) -> None:
    with db_engine.begin() as conn:
        create_leaderboard(
            conn,
            leaderboard_id=f"{game.game_id}-best",
            game_id=game.game_id,
            operator=Operator.best,
        )
    events = [
        match_event("ann", "win", 120),
        match_event("ann", "loss", 30),
        match_event("bob", "draw", 80),
        score_event("bob", 200),
        purchase_event("ann", "2.5", "STRIDE"),
        purchase_event("bob", "4.99", "USD"),
    ]
    assert post_batch(api, game.api_key, events) == {"accepted": 6, "rejected": []}
    wait_processed(db_engine, game.game_id, 6)

    got = totals(db_engine, game.game_id)
    ann, bob = got["ann"], got["bob"]
    assert (ann["matches"], ann["wins"], ann["losses"], ann["total_score"]) == (2, 1, 1, 150)
    assert (ann["best_score"], ann["purchases"], ann["token_spent"]) == (120, 1, Decimal("2.5"))
    assert (bob["matches"], bob["draws"], bob["total_score"], bob["best_score"]) == (1, 1, 280, 200)
    assert (bob["purchases"], bob["token_spent"]) == (1, 0)

    with db_engine.connect() as conn:
        standings = top(conn, f"{game.game_id}-best", limit=10)
        assert [(r.owner_id, r.score, r.rank) for r in standings.records] == [
            ("bob", 200, 1),
            ("ann", 120, 2),
        ]
        assert rank_of(conn, f"{game.game_id}-best", "ann").rank == 2
        commands = conn.execute(
            text(
                "SELECT action, player_id, amount, status, command_id FROM reward_commands"
                " WHERE game_id = :g ORDER BY action"
            ),
            {"g": game.game_id},
        ).all()
    assert [(c.action, c.player_id, c.amount, c.status) for c in commands] == [
        ("burn", "ann", Decimal("2.5"), "pending"),
        ("mint", "ann", Decimal("10"), "pending"),
    ]
    ids = {str(c.command_id) for c in commands}
    published = read_topic(
        stack_settings,
        REWARD_COMMANDS,
        lambda v: str(RewardCommand.model_validate_json(v).command_id) in ids,
        count=len(ids),
    )
    assert {str(RewardCommand.model_validate_json(v).command_id) for v in published} == ids


def test_the_same_batch_posted_twice_counts_once(
    api: httpx.Client, game: GameWithKey, db_engine: Engine
) -> None:
    batch = [match_event(f"p{i % 5}", "win", 10) for i in range(50)]
    post_batch(api, game.api_key, batch)
    post_batch(api, game.api_key, batch)
    # A later event per player: once it is in, the duplicates before it were consumed.
    post_batch(api, game.api_key, [score_event(f"p{i}", 1) for i in range(5)])
    wait_processed(db_engine, game.game_id, 55)
    wait_for(
        "the trailing events",
        lambda: all(t["events"] == 11 for t in totals(db_engine, game.game_id).values()),
    )
    got = totals(db_engine, game.game_id)
    assert {p: (t["wins"], t["total_score"]) for p, t in got.items()} == {
        f"p{i}": (10, 101) for i in range(5)
    }
    assert processed_count(db_engine, game.game_id) == 55
    with db_engine.connect() as conn:
        mints = conn.execute(
            text("SELECT count(*) FROM reward_commands WHERE game_id = :g"), {"g": game.game_id}
        ).scalar_one()
    assert mints == 50


def _snapshot(engine: Engine) -> list:
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT game_id, player_id, events, wins, total_score, token_spent"
                    " FROM player_totals ORDER BY 1, 2"
                )
            )
        ] + [
            conn.execute(text("SELECT count(*) FROM reward_commands")).scalar_one(),
            conn.execute(text("SELECT count(*) FROM processed_events")).scalar_one(),
        ]


def test_a_replay_of_the_topic_from_offset_zero_changes_nothing(
    api: httpx.Client,
    game: GameWithKey,
    db_engine: Engine,
    worker: Stack,
    stack_settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    post_batch(api, game.api_key, [match_event(f"r{i}", "win", i) for i in range(20)])
    wait_processed(db_engine, game.game_id, 20)
    worker.stop("worker", report=lambda _m: None)
    before = _snapshot(db_engine)

    # One marker event per partition, written after everything else: when the replaying
    # group has applied all of them, it has read every partition from offset 0 to the end.
    sentinel_game = f"s-{uuid.uuid4().hex[:10]}"
    producer = KafkaProducer(bootstrap_servers=stack_settings.kafka_bootstrap, acks="all")
    partitions = sorted(producer.partitions_for(GAME_EVENTS))
    for partition in partitions:
        marker = {
            **score_event("marker", 1),
            "game_id": sentinel_game,
            "received_at": datetime.now(UTC).isoformat(),
        }
        producer.send(GAME_EVENTS, json.dumps(marker).encode(), partition=partition).get(30)
    producer.close()

    replay_id = f"replay-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("STRIDE_STREAMS_APP_ID", replay_id)
    replay = Stack(stack_settings.model_copy(update={"streams_app_id": replay_id}), SERVICES)
    replay.up(["worker"], report=lambda _m: None)
    try:
        wait_processed(db_engine, sentinel_game, len(partitions), timeout=120)
    finally:
        replay.stop("worker", report=lambda _m: None)
        monkeypatch.delenv("STRIDE_STREAMS_APP_ID")
        worker.up(["worker"], report=lambda _m: None)

    after = _snapshot(db_engine)
    markers = [row for row in after[:-2] if row[0] == sentinel_game]
    assert len(markers) == 1
    assert [row for row in after[:-2] if row[0] != sentinel_game] == before[:-2]
    assert after[-2:] == [before[-2], before[-1] + len(partitions)]


def test_the_worker_restarts_again_and_again_and_keeps_consuming(
    api: httpx.Client, game: GameWithKey, db_engine: Engine, worker: Stack
) -> None:
    """All scoring processes of the group stop at once and a new set joins: each restart
    gets the partitions again and goes on from the committed offsets."""
    posted = 0
    for round_ in range(3):
        worker.stop("worker", report=lambda _m: None)
        post_batch(api, game.api_key, [score_event(f"again{round_}-{i}", i) for i in range(10)])
        posted += 10
        worker.up(["worker"], report=lambda _m: None)  # ready = partitions assigned
        wait_processed(db_engine, game.game_id, posted)
    assert processed_count(db_engine, game.game_id) == posted


def test_a_malformed_message_lands_in_the_dlq_with_its_reason(
    db_engine: Engine, stack_settings
) -> None:
    tag = uuid.uuid4().hex
    not_an_event = json.dumps({"hello": tag}).encode()
    not_json = b"\xff\xfe" + tag.encode()
    producer = KafkaProducer(bootstrap_servers=stack_settings.kafka_bootstrap, acks="all")
    for value in (not_an_event, not_json):
        producer.send(GAME_EVENTS, value, key=tag.encode()).get(30)
    producer.close()

    letters = [
        DeadLetter.model_validate_json(v)
        for v in read_topic(
            stack_settings,
            GAME_EVENTS_DLQ,
            lambda v: tag.encode() in DeadLetter.model_validate_json(v).original_value(),
            count=2,
        )
    ]
    by_value = {letter.original_value(): letter for letter in letters}
    assert by_value[not_an_event].reason.startswith("event_id: Field required")
    assert "game_id: Field required" in by_value[not_an_event].reason
    assert "Invalid JSON" in by_value[not_json].reason
    assert by_value[not_json].source_topic == GAME_EVENTS


def test_events_produced_by_kcat_are_processed(
    game: GameWithKey, db_engine: Engine, stack_settings
) -> None:
    lines = []
    for score in (7, 11):
        event = score_event("kcat-player", score, game_id=game.game_id)
        lines.append(f"kcat-player\t{json.dumps(event)}")
    subprocess.run(
        ["kcat", "-b", stack_settings.kafka_bootstrap, "-P", "-t", GAME_EVENTS, "-K", "\t"],
        input="\n".join(lines) + "\n",
        text=True,
        check=True,
        timeout=60,
    )
    wait_processed(db_engine, game.game_id, 2)
    consumed = (
        subprocess.run(
            [
                "kcat",
                "-b",
                stack_settings.kafka_bootstrap,
                "-C",
                "-t",
                GAME_EVENTS,
                "-o",
                "beginning",
                "-e",
                "-q",
                "-f",
                "%k\t%s\n",
            ],
            capture_output=True,
            check=True,
            timeout=60,
        )
        .stdout.decode(errors="replace")
        .splitlines()
    )  # other tests wrote non-UTF-8 bytes
    ours = [line for line in consumed if line.startswith("kcat-player\t") and game.game_id in line]
    assert sorted(ours) == sorted(lines)
    got = totals(db_engine, game.game_id)["kcat-player"]
    assert (got["events"], got["total_score"], got["best_score"]) == (2, 18, 11)
    with db_engine.connect() as conn:
        received = conn.execute(
            text("SELECT received_at FROM processed_events WHERE game_id = :g"),
            {"g": game.game_id},
        ).scalars()
        # No API stamped these: the Kafka record time stands in for received_at.
        assert all(abs((r - datetime.now(UTC)).total_seconds()) < 600 for r in received)
