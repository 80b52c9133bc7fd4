"""``python -m streams run`` stops its worker processes together and kills a straggler."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import streams.__main__ as launcher
from streams.__main__ import stop_workers

# A stand-in worker: on SIGTERM it notes when it got the signal, takes a moment to leave
# (as Faust does), notes when it is gone, and exits 0.
CHILD = """
import signal, sys, time
log = sys.argv[1]
def leave(signum, frame):
    with open(log, "a") as f:
        f.write(f"{sys.argv[2]} signalled {time.monotonic()}\\n")
    time.sleep(0.3)
    with open(log, "a") as f:
        f.write(f"{sys.argv[2]} gone {time.monotonic()}\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, leave)
open(sys.argv[3], "w").close()
while True:
    time.sleep(0.05)
"""


def _children(tmp_path: Path, count: int) -> tuple[list[subprocess.Popen], Path]:
    log = tmp_path / "log"
    children = []
    for n in range(count):
        ready = tmp_path / f"ready-{n}"
        children.append(
            subprocess.Popen([sys.executable, "-c", CHILD, str(log), f"w{n}", str(ready)])
        )
        while children[-1].poll() is None and not ready.exists():
            time.sleep(0.01)  # polling for readiness: the handler is set once the file exists
    return children, log


def test_every_worker_is_signalled_before_any_has_exited(tmp_path: Path) -> None:
    children, log = _children(tmp_path, 3)

    codes = stop_workers(children, signal.SIGTERM)

    assert codes == [0, 0, 0]
    events = [line.split()[:2] for line in log.read_text().splitlines()]
    first_gone = next(i for i, (_, what) in enumerate(events) if what == "gone")
    signalled = {who for who, what in events[:first_gone] if what == "signalled"}
    assert signalled == {"w0", "w1", "w2"}  # together: the stop takes the slowest, not the sum
    assert sorted(who for who, what in events if what == "gone") == ["w0", "w1", "w2"]


def test_a_worker_that_ignores_the_signal_is_killed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(launcher, "STOP_TIMEOUT_S", 0.5)
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\ntime.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    children, _log = _children(tmp_path, 1)

    codes = stop_workers([stubborn, *children], signal.SIGTERM)

    assert codes == [-signal.SIGKILL, 0]


def test_a_worker_already_gone_is_skipped_and_its_code_reported(tmp_path: Path) -> None:
    children, log = _children(tmp_path, 2)
    children[0].kill()
    children[0].wait()

    codes = stop_workers(children, signal.SIGTERM)

    assert codes == [-signal.SIGKILL, 0]
    assert [line.split()[:2] for line in log.read_text().splitlines()] == [
        ["w1", "signalled"],
        ["w1", "gone"],
    ]
