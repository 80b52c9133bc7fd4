"""The indexer's readiness: one file per chain under ``<state>/run/heartbeats``, written
after every step; the ``indexer`` service's probe reads them (no database connection)."""

from __future__ import annotations

import json
import os
import time

from core.platform.config import Settings

MAX_AGE_S = 10.0


def write_heartbeat(settings: Settings, chain_id: int) -> None:
    path = settings.state_dir / "run" / "heartbeats" / f"indexer.{chain_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "at": time.time()}))
    tmp.replace(path)


def indexer_problem(settings: Settings) -> str | None:
    """None when every configured chain's follower stepped within ``MAX_AGE_S``."""
    for chain_id in settings.indexed_chains:
        path = settings.state_dir / "run" / "heartbeats" / f"indexer.{chain_id}.json"
        try:
            beat = json.loads(path.read_text())
        except (OSError, ValueError):
            return f"chain {chain_id}: the indexer has not completed a step yet"
        if time.time() - float(beat["at"]) > MAX_AGE_S:
            return f"chain {chain_id}: no indexer step for {time.time() - beat['at']:.0f}s"
    return None
