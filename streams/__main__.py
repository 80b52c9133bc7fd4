"""Entry points of the stream processors.

``python -m streams run``: create the topics, then run ``streams_processes`` Faust worker
processes of the same app (they split the partitions) and supervise them: a stop signal
is forwarded, and when one process exits the others are stopped too. Children die with
this process even on ``kill -9`` (PR_SET_PDEATHSIG), so the supervisor sees one unit.
``python -m streams worker ...``: one Faust worker (Faust's own command line).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

from core.config import get_settings
from core.topics import ensure_topics
from streams.heartbeat import PROCESS_INDEX_ENV, clear_heartbeats

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def run_workers() -> int:
    settings = get_settings()
    ensure_topics(
        settings.kafka_bootstrap, settings.kafka_topic_partitions, settings.kafka_replication_factor
    )
    clear_heartbeats(settings)
    command = [sys.executable, "-m", "streams", "worker", "--without-web", "-l", "info"]
    children = [
        subprocess.Popen(  # noqa: S603 - our own module
            command,
            env={**os.environ, PROCESS_INDEX_ENV: str(index)},
            preexec_fn=_die_with_parent,
        )
        for index in range(settings.streams_processes)
    ]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while all(child.poll() is None for child in children):
        time.sleep(0.2)  # supervising children: wake up to notice an exit
    forward(signal.SIGTERM, None)
    codes = [child.wait() for child in children]
    return next((code for code in codes if code), 0)


def main() -> None:
    if sys.argv[1:2] == ["run"]:
        raise SystemExit(run_workers())
    import streams.agents.lake_sink
    import streams.agents.scoring  # noqa: F401 - registers the scoring agent
    from streams.app import app

    app.main()


if __name__ == "__main__":
    main()
