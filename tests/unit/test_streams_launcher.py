"""``python -m streams run`` stops its worker processes one after the other, never together
(Tansu keeps a departed member as group leader when two leave at the same instant)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from streams.__main__ import stop_in_turn

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


def test_each_worker_is_signalled_only_after_the_previous_one_exited(tmp_path: Path) -> None:
    children, log = _children(tmp_path, 3)

    codes = stop_in_turn(children, signal.SIGTERM)

    assert codes == [0, 0, 0]
    lines = [line.split() for line in log.read_text().splitlines()]
    assert [(who, what) for who, what, _ in lines] == [
        ("w0", "signalled"),
        ("w0", "gone"),
        ("w1", "signalled"),
        ("w1", "gone"),
        ("w2", "signalled"),
        ("w2", "gone"),
    ]
    times = [float(t) for _, _, t in lines]
    assert times == sorted(times)


def test_a_worker_already_gone_is_skipped_and_its_code_reported(tmp_path: Path) -> None:
    children, log = _children(tmp_path, 2)
    children[0].kill()
    children[0].wait()

    codes = stop_in_turn(children, signal.SIGTERM)

    assert codes == [-signal.SIGKILL, 0]
    assert [line.split()[:2] for line in log.read_text().splitlines()] == [
        ["w1", "signalled"],
        ["w1", "gone"],
    ]
