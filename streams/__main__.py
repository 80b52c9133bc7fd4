"""Entry points of the stream processors.

``python -m streams run``: create the topics, then run ``streams_processes`` Faust worker
processes of the scoring app (they split the partitions) and one process of the lake sink
app (its own consumer group, at a lower CPU priority: bronze may lag during a burst, the
scores must not), one of the metric alerts app (its own group: a spike is judged even
while the scoring processes are busy) and ``battles_processes`` of the battle engine app
(its own group: battles are resolved while the scoring processes score a burst, including
the engine's own ``match_result`` events), and supervise them: a stop signal is forwarded,
and when one process exits the others are stopped too. Children die with this process
even on ``kill -9`` (PR_SET_PDEATHSIG), so the supervisor sees one unit.
``python -m streams worker ...``: one Faust worker of the role in ``STRIDE_STREAMS_ROLE``
(default ``scoring``), with Faust's own command line.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.platform.config import get_settings
from core.platform.gc_tuning import tune_for_throughput
from core.platform.observability import (
    MULTIPROC_ENV,
    mark_process_dead,
    reset_multiprocess_dir,
    serve_metrics,
)
from core.platform.topics import ensure_topics
from streams.heartbeat import (
    BATTLES,
    LAKE_SINK,
    METRIC_ALERTS,
    PROCESS_INDEX_ENV,
    ROLE_ENV,
    SCORING,
    clear_heartbeats,
)

_PR_SET_PDEATHSIG = 1
# The lake sink yields the CPU to the scoring processes when both want it (nice 10 gets
# about a tenth of a contended core) and catches up when the burst is over.
LAKE_SINK_NICENESS = 10
STOP_TIMEOUT_S = 5.0  # per worker; Faust needs about a second to leave the group and close


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _lake_sink_child() -> None:
    _die_with_parent()
    os.nice(LAKE_SINK_NICENESS)


def run_workers() -> int:
    settings = get_settings()
    ensure_topics(settings)
    clear_heartbeats(settings)
    # The workers write their samples under PROMETHEUS_MULTIPROC_DIR (emptied here: files of
    # earlier runs would be summed too); this process serves their sum.
    metrics_dir = os.environ.setdefault(
        MULTIPROC_ENV, str(settings.state_dir / "metrics" / "streams")
    )
    reset_multiprocess_dir(Path(metrics_dir))
    serve_metrics(settings.metrics_host, settings.streams_metrics_port)
    command = [sys.executable, "-m", "streams", "worker", "--without-web", "-l", "info"]
    roles = [(SCORING, index, _die_with_parent) for index in range(settings.streams_processes)]
    roles.append((LAKE_SINK, 0, _lake_sink_child))
    roles.append((METRIC_ALERTS, 0, _die_with_parent))
    roles.extend((BATTLES, index, _die_with_parent) for index in range(settings.battles_processes))
    children = [
        subprocess.Popen(  # noqa: S603 - our own module
            command,
            env={**os.environ, ROLE_ENV: role, PROCESS_INDEX_ENV: str(index)},
            preexec_fn=preexec,
            process_group=0,  # a stop signal to our group reaches only us (stop_workers)
        )
        for role, index, preexec in roles
    ]

    requested: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: requested.append(signum))
    signal.signal(signal.SIGINT, lambda signum, _frame: requested.append(signum))
    while not requested and all(child.poll() is None for child in children):
        time.sleep(0.2)  # supervising children: wake up to notice an exit or a stop request
    codes = stop_workers(children, requested[0] if requested else signal.SIGTERM)
    for child in children:
        mark_process_dead(child.pid)
    return next((code for code in codes if code), 0)


def stop_workers(children: list[subprocess.Popen], signum: int) -> list[int]:
    """Signal every worker at once, then wait for each; one that has not exited within
    ``STOP_TIMEOUT_S`` of the signal is killed. (Kafka handles members leaving a group at
    the same instant; the stop takes as long as the slowest worker, not their sum.)"""
    for child in children:
        if child.poll() is None:
            child.send_signal(signum)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return [child.wait() for child in children]


# The agents of each role's app. The chain projections share the scoring processes (and
# their consumer group): both write PostgreSQL, and the chain's volume is small beside the
# events'. The battle engine has its own role: a battle's two match results are two more
# events for the scoring processes, which must not delay the next battles.
_AGENTS = {
    SCORING: (
        "streams.agents.scoring",
        "streams.agents.chain_projections",
    ),
    LAKE_SINK: ("streams.agents.lake_sink",),
    METRIC_ALERTS: ("streams.agents.metric_alerts",),
    BATTLES: ("streams.agents.battles",),
}


def main() -> None:
    if sys.argv[1:2] == ["run"]:
        raise SystemExit(run_workers())
    from streams.app import app, role

    for module in _AGENTS[role]:
        importlib.import_module(module)  # registers the role's agents on the app
    tune_for_throughput()
    app.main()


if __name__ == "__main__":
    main()
