"""The API and the workers tune the garbage collector once their app is built."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import gc, json
from core.platform.gc_tuning import YOUNG_GENERATION_THRESHOLD, tune_for_throughput
before = gc.get_threshold()[0]
tune_for_throughput()
print(json.dumps({"before": before, "after": gc.get_threshold()[0],
                  "frozen": gc.get_freeze_count(), "want": YOUNG_GENERATION_THRESHOLD}))
"""


def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    # A child process: the settings are process-wide and must not leak into this test run.
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    seen = json.loads(out)
    assert seen["before"] == 700  # CPython's default
    assert seen["after"] == seen["want"] == 50_000
    assert seen["frozen"] > 1000  # the imported modules and their objects
