"""The alert rules (promtool's own checks and rule unit tests), the generated Prometheus
configuration, JSON logs and the pure consumer-lag arithmetic."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from cli.monitoring import RULES, prometheus_config, scrape_targets
from core.platform.config import REPO_ROOT, Settings
from core.platform.consumer_lag import dead_letter_topics, lag_of
from core.platform.observability import JsonFormatter, bounded, request_id_var
from core.platform.topics import DEAD_LETTER_TOPICS

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: apt-get install prometheus (scripts/setup.sh)"
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, cwd=RULES.parent, check=False
    )


@needs_promtool
def test_the_alert_rules_are_valid() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_the_alert_rules_fire_when_they_should_and_only_then() -> None:
    result = promtool("test", "rules", "rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_rule_unit_test_and_a_runbook_section() -> None:
    import yaml

    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    tested = RULES.with_name("rules_test.yml").read_text()
    runbook = (REPO_ROOT / "docs" / "operations.md").read_text()
    anchors = {
        "#" + line.lstrip("# ").strip().lower().replace(" ", "-")
        for line in runbook.splitlines()
        if line.startswith("## ") or line.startswith("### ")
    }
    for rule in rules:
        assert f"alertname: {rule['alert']}" in tested, rule["alert"]
        assert rule["annotations"]["runbook"].split("operations.md")[1] in anchors, rule["alert"]


@needs_promtool
def test_the_generated_configuration_is_valid_and_scrapes_only_loopback(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, alertmanager_url="http://127.0.0.1:19093")
    config = prometheus_config(settings)
    path = tmp_path / "prometheus.yml"
    path.write_text(json.dumps(config))
    result = promtool("check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    targets = [t for job in config["scrape_configs"] for t in job["static_configs"][0]["targets"]]
    assert targets and all(t.startswith("127.0.0.1:") for t in targets)
    assert set(scrape_targets(settings)) >= {"stride-api", "stride-streams", "postgres"}
    (alertmanager,) = config["alerting"]["alertmanagers"]
    assert alertmanager["static_configs"] == [{"targets": ["127.0.0.1:19093"]}]


def test_json_log_lines_carry_the_request_id_and_extra_fields() -> None:
    record = logging.LogRecord("stride.x", logging.INFO, __file__, 1, "batch of %d", (3,), None)
    record.request_ids = ["a", "b"]
    token = request_id_var.set("11111111-1111-1111-1111-111111111111")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["msg"] == "batch of 3"
    assert line["request_id"] == "11111111-1111-1111-1111-111111111111"
    assert line["request_ids"] == ["a", "b"]
    assert line["level"] == "info" and line["logger"] == "stride.x"
    assert "request_id" not in json.loads(JsonFormatter().format(record))


def test_bounded_keeps_distinct_values_in_order_and_counts_the_others() -> None:
    assert bounded(["a", "b", "a", "c", "d", "c"], 2) == (["a", "b"], 2)
    assert bounded([], 5) == ([], 0)


def test_lag_is_end_minus_committed_per_partition() -> None:
    committed = {("t", 1): 7, ("t", 0): 10, ("gone", 0): 3, ("t", 2): -1}
    ends = {("t", 0): 15, ("t", 1): 7, ("t", 2): 4}
    rows = lag_of("g", committed, ends)
    assert [(r.topic, r.partition, r.lag) for r in rows] == [("t", 0, 5), ("t", 1, 0)]
    assert dead_letter_topics() == list(DEAD_LETTER_TOPICS)
