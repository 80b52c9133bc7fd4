"""Worker roles and heartbeats: each Faust worker process writes one file, the probe reads them.

Four roles, four Faust apps (consumer groups): ``scoring`` (``streams_app_id``) writes
game events to PostgreSQL; ``lake-sink`` (``<streams_app_id>-lake``) appends them and
wearable samples to bronze Delta; ``metric-alerts`` (``<streams_app_id>-metric-alerts``)
judges metric samples and posts alerts to Alertmanager; ``battles``
(``<streams_app_id>-battles``) resolves and rates queued battles. Kept free of Faust imports
so ``stride status`` can probe without loading the app.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from core.platform.config import Settings
from core.platform.topics import BATTLE_REQUESTS, GAME_EVENTS, METRIC_SAMPLES

# Set by ``python -m streams run`` on each worker process it starts.
PROCESS_INDEX_ENV = "STRIDE_STREAMS_PROCESS_INDEX"  # 0, 1, ... within a role
ROLE_ENV = "STRIDE_STREAMS_ROLE"
SCORING = "scoring"
LAKE_SINK = "lake-sink"
METRIC_ALERTS = "metric-alerts"
BATTLES = "battles"
ROLES = (SCORING, LAKE_SINK, METRIC_ALERTS, BATTLES)
# The consumer group of each role but scoring: ``<streams_app_id>-<suffix>``.
_GROUP_SUFFIX = {LAKE_SINK: "lake", METRIC_ALERTS: "metric-alerts", BATTLES: "battles"}
# The topic whose partitions a role's heartbeat lists (what its readiness waits for).
READINESS_TOPIC = {
    SCORING: GAME_EVENTS,
    LAKE_SINK: GAME_EVENTS,
    METRIC_ALERTS: METRIC_SAMPLES,
    BATTLES: BATTLE_REQUESTS,
}


def app_id_of(settings: Settings, role: str) -> str:
    """The Faust app id (= consumer group) of a role."""
    if role not in ROLES:
        raise ValueError(f"unknown streams role {role!r}; expected one of {', '.join(ROLES)}")
    if role == SCORING:
        return settings.streams_app_id
    return f"{settings.streams_app_id}-{_GROUP_SUFFIX[role]}"


def heartbeat_dir(settings: Settings) -> Path:
    return settings.state_dir / "run" / "heartbeats"


def heartbeat_path(settings: Settings, role: str, pid: int) -> Path:
    return heartbeat_dir(settings) / f"{app_id_of(settings, role)}.{pid}.json"


def clear_heartbeats(settings: Settings) -> None:
    for role in ROLES:
        for path in heartbeat_dir(settings).glob(f"{app_id_of(settings, role)}.*.json"):
            path.unlink(missing_ok=True)


def write_heartbeat(settings: Settings, role: str, partitions: list[str]) -> None:
    path = heartbeat_path(settings, role, os.getpid())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "at": time.time(), "partitions": partitions}))
    tmp.replace(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fresh_beats(settings: Settings, role: str, max_age_s: float) -> list[dict]:
    beats = []
    for path in heartbeat_dir(settings).glob(f"{app_id_of(settings, role)}.*.json"):
        try:
            beat = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _alive(int(beat["pid"])) and time.time() - float(beat["at"]) <= max_age_s:
            beats.append(beat)
    return beats


def worker_problem(settings: Settings, max_age_s: float = 5.0) -> str | None:
    """None when every scoring process beat recently and together they own game.events.v1,
    every battle engine process beat and together they own battles.requests.v1, and the
    lake sink and metric alerts processes beat too."""
    beats = _fresh_beats(settings, SCORING, max_age_s)
    wanted = settings.streams_processes
    if len(beats) < wanted:
        return f"{len(beats)} of {wanted} scoring processes joined the consumer group"
    if not any(beat["partitions"] for beat in beats):
        return f"no partition of {GAME_EVENTS} assigned yet"
    if not _fresh_beats(settings, LAKE_SINK, max_age_s):
        return "the lake sink process has not joined its consumer group yet"
    if not _fresh_beats(settings, METRIC_ALERTS, max_age_s):
        return "the metric alerts process has not joined its consumer group yet"
    engines = _fresh_beats(settings, BATTLES, max_age_s)
    if len(engines) < settings.battles_processes:
        wanted = settings.battles_processes
        return f"{len(engines)} of {wanted} battle engine processes joined their consumer group"
    if not any(beat["partitions"] for beat in engines):
        return f"no partition of {BATTLE_REQUESTS} assigned yet"
    return None
