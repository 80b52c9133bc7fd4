"""PostgreSQL killed (`kill -9`) mid-stream and started again: the API answers 503 with
Retry-After where it needs the database, keeps accepting events for the game keys it knows,
recovers by itself, and the worker applies every accepted event exactly once."""

from __future__ import annotations

import os
import signal

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

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]


def test_a_killed_database_is_a_503_then_recovers_and_loses_nothing(
    api: httpx.Client, game: GameWithKey, stack: Stack, db_engine: Engine
) -> None:
    key = {"X-Api-Key": game.api_key}
    before = [score_event(f"p{i}", i) for i in range(20)]
    assert post_batch(api, game.api_key, before)["accepted"] == 20  # the key is now known
    pid = stack.pid("postgres")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(
        "the API to notice the database is gone",
        lambda: (
            api.post("/v1/get_score", json={"user_id": "p1", "input": 1}, headers=key).status_code
            == 503
        ),
        timeout=30,
    )
    down = api.post("/v1/get_score", json={"user_id": "p1", "input": 1}, headers=key)
    assert down.json()["code"] == "unavailable" and down.headers["retry-after"].isdigit()
    during = [score_event(f"p{i}", i) for i in range(30)]
    assert post_batch(api, game.api_key, during)["accepted"] == 30  # ingest goes on (Kafka up)

    stack.up(["postgres"], report=lambda _m: None)
    wait_for(
        "get_score to answer again",
        lambda: (
            api.post("/v1/get_score", json={"user_id": "p1", "input": 1}, headers=key).status_code
            == 200
        ),
        timeout=60,
    )
    wait_processed(db_engine, game.game_id, 50, timeout=120)
    assert processed_count(db_engine, game.game_id) == 50  # every event once, none twice
    assert sum(t["events"] for t in totals(db_engine, game.game_id).values()) == 50
