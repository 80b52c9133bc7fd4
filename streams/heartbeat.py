"""Worker heartbeats: each Faust worker process writes one file, the supervisor's probe reads them.

Kept free of Faust imports so ``stride status`` can probe without loading the app.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from core.config import Settings
from core.topics import GAME_EVENTS

# Set by ``python -m streams run`` on each worker process it starts (0, 1, ...).
PROCESS_INDEX_ENV = "STRIDE_STREAMS_PROCESS_INDEX"


def heartbeat_dir(settings: Settings) -> Path:
    return settings.state_dir / "run" / "heartbeats"


def heartbeat_path(settings: Settings, pid: int) -> Path:
    return heartbeat_dir(settings) / f"{settings.streams_app_id}.{pid}.json"


def clear_heartbeats(settings: Settings) -> None:
    for path in heartbeat_dir(settings).glob(f"{settings.streams_app_id}.*.json"):
        path.unlink(missing_ok=True)


def write_heartbeat(settings: Settings, partitions: list[str]) -> None:
    path = heartbeat_path(settings, os.getpid())
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


def worker_problem(settings: Settings, max_age_s: float = 5.0) -> str | None:
    """None when every worker process beat recently and together they own game.events.v1."""
    beats = []
    for path in heartbeat_dir(settings).glob(f"{settings.streams_app_id}.*.json"):
        try:
            beat = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _alive(int(beat["pid"])) and time.time() - float(beat["at"]) <= max_age_s:
            beats.append(beat)
    wanted = settings.streams_processes
    if len(beats) < wanted:
        return f"{len(beats)} of {wanted} worker processes joined the consumer group"
    if not any(beat["partitions"] for beat in beats):
        return f"no partition of {GAME_EVENTS} assigned yet"
    return None
