"""Fixtures and helpers of the streaming tests: a game with a key, the worker, event builders.

Test modules import the ``*_fixture`` functions they use; pytest registers them under the
names given here (``worker``, ``game``, ``api``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from cli.stack import Stack
from core.identity.game_keys import create_game
from core.platform.db import session_scope

T = TypeVar("T")


@dataclass(frozen=True)
class GameWithKey:
    game_id: str
    api_key: str


@pytest.fixture(scope="session", name="worker")
def worker_fixture(stack: Stack, db_engine: Engine, kafka) -> Stack:
    """The Faust worker running as `stride up` runs it."""
    stack.up(["worker"], report=lambda _m: None)
    return stack


@pytest.fixture(name="game")
def game_fixture(db_engine: Engine) -> GameWithKey:
    """A new game with its API key (unique per test, so totals never mix)."""
    with session_scope() as session:
        new = create_game(session, "Test game", f"t-{uuid.uuid4().hex[:12]}")
    return GameWithKey(new.game_id, new.api_key)


@pytest.fixture(name="api")
def api_fixture(live_api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_api, timeout=30) as client:
        yield client


def score_event(player: str, score: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "player_id": player,
        "type": "score",
        "payload": {"score": score},
        "occurred_at": datetime.now(UTC).isoformat(),
        **extra,
    }


def match_event(player: str, outcome: str, score: int) -> dict[str, Any]:
    return {
        **score_event(player, score),
        "type": "match_result",
        "payload": {"outcome": outcome, "score": score, "opponent": "bot-1"},
    }


def purchase_event(player: str, price: str, currency: str) -> dict[str, Any]:
    return {
        **score_event(player, 0),
        "type": "purchase",
        "payload": {"item": "sword", "price": price, "currency": currency},
    }


def post_batch(client: httpx.Client, key: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post("/v1/events/batch", json={"events": events}, headers={"X-Api-Key": key})
    assert response.status_code == 202, response.text
    return response.json()


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll ``probe`` until it returns something truthy (readiness polling with a deadline)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def processed_count(engine: Engine, game_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM processed_events WHERE game_id = :g"), {"g": game_id}
        ).scalar_one()


def wait_processed(engine: Engine, game_id: str, expected: int, timeout: float = 60.0) -> None:
    wait_for(
        f"{expected} processed events of {game_id}",
        lambda: processed_count(engine, game_id) >= expected,
        timeout,
    )


def totals(engine: Engine, game_id: str) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM player_totals WHERE game_id = :g ORDER BY player_id"),
            {"g": game_id},
        ).mappings()
        return {row["player_id"]: dict(row) for row in rows}
