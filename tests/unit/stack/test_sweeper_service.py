"""The sweeper's pieces that need no services: its schedule (pure), its readiness from the
heartbeat, its service declaration and scrape target, its settings and command line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cli.main import app
from cli.monitoring import details_text, scrape_targets
from cli.services import SERVICES, SWEEPER
from cli.sweeper import (
    SWEEPS,
    Schedule,
    SweepName,
    heartbeat_path,
    selected,
    sweeper_problem,
    write_heartbeat,
)
from core.platform.config import Settings

H, G = SweepName.holds, SweepName.gifts


def test_every_sweep_is_due_at_start_then_once_per_its_interval() -> None:
    schedule = Schedule({H: 30.0, G: 60.0})
    assert schedule.due(100.0) == [H, G]
    schedule.ran(H, 100.0)
    schedule.ran(G, 100.0)
    assert schedule.due(129.9) == []
    assert schedule.due(130.0) == [H]
    assert schedule.due(160.0) == [H, G]


def test_the_loop_sleeps_until_the_next_sweep_but_wakes_for_the_heartbeat() -> None:
    schedule = Schedule({H: 0.2, G: 60.0})
    assert schedule.wait_s(0.0) == 0.0  # both due now
    schedule.ran(H, 0.0)
    schedule.ran(G, 0.0)
    assert schedule.wait_s(0.05) == pytest.approx(0.15)
    slow = Schedule({G: 60.0})
    slow.ran(G, 0.0)
    assert slow.wait_s(1.0, at_most=5.0) == 5.0  # heartbeat first
    assert slow.wait_s(100.0) == 0.0  # overdue: no negative sleep


def test_readiness_follows_the_heartbeat_and_names_a_failing_sweep(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, env="test")
    assert "has not completed its first round" in (sweeper_problem(settings) or "")
    write_heartbeat(heartbeat_path(settings), {})
    assert sweeper_problem(settings) is None
    write_heartbeat(heartbeat_path(settings), {"holds": "OperationalError: connection refused"})
    assert sweeper_problem(settings) == "sweep holds failing: OperationalError: connection refused"
    heartbeat_path(settings).write_text(json.dumps({"pid": 1, "at": time.time() - 120}))
    assert "no sweeper round for 120s" in (sweeper_problem(settings) or "")


def test_the_sweeper_is_a_service_scraped_by_prometheus(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, env="test")
    assert SWEEPER in SERVICES and SWEEPER.depends_on == ("postgres",)
    command = SWEEPER.command(settings)
    assert command[-3:] == ["sweep", "--heartbeat-file", str(heartbeat_path(settings))]
    assert "--once" not in command
    assert scrape_targets(settings)["stride-sweeper"] == (
        f"127.0.0.1:{settings.sweeper_metrics_port}"
    )


def test_only_chooses_sweeps_and_none_means_all() -> None:
    assert [s.name for s in selected(None)] == list(SweepName)
    assert [s.name for s in selected([SweepName.refunds])] == [SweepName.refunds]
    assert set(SWEEPS) == set(SweepName)


def test_intervals_come_from_settings_and_must_be_positive(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, env="test", sweep_gifts_interval_s=5)
    assert SWEEPS[SweepName.gifts].interval(settings) == 5.0
    with pytest.raises(ValidationError):
        Settings(state_dir=tmp_path, env="test", sweep_holds_interval_s=0)
    with pytest.raises(ValidationError):
        Settings(state_dir=tmp_path, env="test", sweep_batch_size=0)


def test_an_unknown_sweep_is_refused_by_name() -> None:
    result = CliRunner().invoke(app, ["sweep", "--once", "--only", "coupons"])
    assert result.exit_code == 2
    assert "coupons" in result.output and "holds" in result.output


def test_stride_status_shows_what_is_due_per_sweep() -> None:
    due = {"holds": 3, "gifts": 0, "uploads": 1, "refunds": 2, "refunding": 4}
    assert details_text({"due": due}) == "due: holds 3, gifts 0, uploads 1, refunds 2; refunding 4"
