"""kill -9 of the Faust worker while events stream in, then a restart: totals stay exact."""

import os
import signal
from collections import Counter

import httpx
import pytest
from sqlalchemy.engine import Engine

from cli.stack import Stack
from tests.streaming_helpers import (  # noqa: F401 - fixtures
    GameWithKey,
    api_fixture,
    game_fixture,
    post_batch,
    processed_count,
    score_event,
    totals,
    wait_for,
    wait_processed,
    worker_fixture,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BATCHES = 30
BATCH_SIZE = 500
PLAYERS = 40


def test_kill_9_mid_stream_and_restart_leaves_totals_exact(
    api: httpx.Client, game: GameWithKey, db_engine: Engine, worker: Stack
) -> None:
    events = [score_event(f"k{n % PLAYERS}", n % 97) for n in range(BATCHES * BATCH_SIZE)]
    batches = [events[i : i + BATCH_SIZE] for i in range(0, len(events), BATCH_SIZE)]
    expected_scores: Counter[str] = Counter()
    expected_events: Counter[str] = Counter()
    for event in events:
        expected_scores[event["player_id"]] += event["payload"]["score"]
        expected_events[event["player_id"]] += 1

    half = BATCHES // 2
    for batch in batches[:half]:
        post_batch(api, game.api_key, batch)
    wait_for("the worker to be mid-stream", lambda: processed_count(db_engine, game.game_id) > 0)
    pid = worker.pid("worker")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for("the worker to die", lambda: worker.pid("worker") is None, timeout=10)
    for batch in batches[half:]:  # keeps streaming while the worker is down
        post_batch(api, game.api_key, batch)

    worker.up(["worker"], report=lambda _m: None)
    wait_processed(db_engine, game.game_id, len(events), timeout=180)

    got = totals(db_engine, game.game_id)
    assert {p: t["total_score"] for p, t in got.items()} == dict(expected_scores)
    assert {p: t["events"] for p, t in got.items()} == dict(expected_events)
    assert processed_count(db_engine, game.game_id) == len(events)
