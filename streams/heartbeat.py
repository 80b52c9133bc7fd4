"""The worker's heartbeat file: written by the Faust worker, read by the supervisor's probe.

Kept free of Faust imports so ``stride status`` can probe without loading the app.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from core.config import Settings
from core.topics import GAME_EVENTS


def heartbeat_path(settings: Settings) -> Path:
    return settings.state_dir / "run" / f"{settings.streams_app_id}.heartbeat.json"


def worker_problem(settings: Settings, max_age_s: float = 5.0) -> str | None:
    """None when a live worker beat recently and owns partitions of game.events.v1."""
    path = heartbeat_path(settings)
    try:
        beat = json.loads(path.read_text())
    except (OSError, ValueError):
        return "no heartbeat yet (the worker is joining the consumer group)"
    try:
        os.kill(int(beat["pid"]), 0)
    except ProcessLookupError:
        return f"the worker that wrote the heartbeat (pid {beat['pid']}) is gone"
    except PermissionError:
        pass
    age = time.time() - float(beat["at"])
    if age > max_age_s:
        return f"last heartbeat {age:.0f}s ago"
    if not beat.get("partitions"):
        return f"no partition of {GAME_EVENTS} assigned yet"
    return None
