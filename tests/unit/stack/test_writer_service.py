"""The writer service's pieces that need no services: its readiness from the heartbeat,
the local sender address the anvil deployment grants SENDER_ROLE, the scrape target."""

from __future__ import annotations

import json
import time
from pathlib import Path

from eth_account import Account

from chain_writer.__main__ import write_heartbeat, writer_problem
from cli.monitoring import scrape_targets
from cli.services import SERVICES, WRITER, _writer_address
from core.platform.config import Settings


def test_readiness_follows_the_heartbeat(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, env="test")
    assert "has not completed a pass" in (writer_problem(settings) or "")
    write_heartbeat(settings, settings.writer_chain)
    assert writer_problem(settings) is None
    path = tmp_path / "run" / "heartbeats" / f"writer.{settings.writer_chain}.json"
    path.write_text(json.dumps({"pid": 1, "at": time.time() - 60}))
    assert "no writer pass for 60s" in (writer_problem(settings) or "")


def test_the_local_sender_is_derived_from_the_generated_secret(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, env="test")
    address = _writer_address(settings)
    assert address == Account.from_key(settings.writer_key()).address
    assert _writer_address(Settings(state_dir=tmp_path, env="test")) == address  # kept
    assert _writer_address(Settings(state_dir=tmp_path, env="test", writer_signer="kms")) is None


def test_the_writer_is_a_service_scraped_by_prometheus(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, env="test")
    assert WRITER in SERVICES and set(WRITER.depends_on) == {"postgres", "kafka", "anvil"}
    assert scrape_targets(settings)["stride-writer"] == f"127.0.0.1:{settings.writer_metrics_port}"
