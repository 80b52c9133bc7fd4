"""The worker roles: the battle engine is its own role, consumer group and readiness."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.platform.config import Settings
from streams.__main__ import _AGENTS
from streams.heartbeat import (
    BATTLES,
    LAKE_SINK,
    METRIC_ALERTS,
    ROLES,
    SCORING,
    app_id_of,
    heartbeat_dir,
    worker_problem,
)


@pytest.fixture
def pids() -> Iterator[list[int]]:
    """Live processes to beat for (a heartbeat names a live pid)."""
    sleepers = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(5)
    ]
    yield [p.pid for p in sleepers]
    for p in sleepers:
        p.kill()
        p.wait()


def _beat(settings: Settings, role: str, pid: int, partitions: list[str]) -> None:
    path = heartbeat_dir(settings) / f"{app_id_of(settings, role)}.{pid}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": pid, "at": time.time(), "partitions": partitions}))


def test_the_battle_engine_runs_only_in_its_own_role_and_group() -> None:
    settings = Settings(_env_file=None)
    assert set(ROLES) == set(_AGENTS)
    assert _AGENTS[BATTLES] == ("streams.agents.battles",)
    assert all(
        "streams.agents.battles" not in agents for r, agents in _AGENTS.items() if r != BATTLES
    )
    groups = {app_id_of(settings, role) for role in ROLES}
    assert len(groups) == len(ROLES)  # four consumer groups
    assert app_id_of(settings, BATTLES) == "stride-streams-battles"


def test_the_worker_is_ready_only_once_every_battle_engine_process_owns_partitions(
    tmp_path: Path, pids: list[int]
) -> None:
    settings = Settings(
        _env_file=None, state_dir=tmp_path, streams_processes=1, battles_processes=2
    )
    _beat(settings, SCORING, pids[0], ["game.events.v1:0"])
    _beat(settings, LAKE_SINK, pids[1], [])
    _beat(settings, METRIC_ALERTS, pids[2], [])
    assert worker_problem(settings) == "0 of 2 battle engine processes joined their consumer group"

    _beat(settings, BATTLES, pids[3], [])
    _beat(settings, BATTLES, pids[4], [])
    assert worker_problem(settings) == "no partition of battles.requests.v1 assigned yet"

    _beat(settings, BATTLES, pids[4], ["battles.requests.v1:0", "battles.requests.v1:1"])
    assert worker_problem(settings) is None
