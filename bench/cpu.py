"""CPU seconds spent by each component of a private stack, read from ``/proc`` (Linux).

The stack's processes are the benchmark's descendants (it starts every service); they are
told apart by their command line (and, for the stream workers, by their
``STRIDE_STREAMS_ROLE``). Every other process of the machine is ``outside the stack``, not
part of ``total``: on a shared host the other engineers' PostgreSQL, Kafka and Spark have
the same command lines as ours, and used to be counted as ours. A
benchmark takes a :func:`snapshot` before and after a phase and divides the difference by
the events of the phase: CPU microseconds per event, per component. Processes that
started or ended during the phase count with what they spent while alive and seen.
"""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
Snapshot = dict[int, tuple[str, float]]  # pid -> (component, CPU seconds so far)
OUTSIDE = "outside the stack"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the process ended meanwhile, or is not ours to read
        return b""


def component_of(pid: int, cmdline: list[str], environ: bytes) -> str:
    """Which part of the stack a process is (``other`` when none)."""
    if pid == os.getpid():
        return "load generator (bench)"
    exe = Path(cmdline[0]).name if cmdline else ""
    joined = " ".join(cmdline)
    if exe == "postgres" or joined.startswith("postgres:"):
        return "postgresql"
    if "kafka.Kafka" in cmdline:
        return "kafka"
    if "org.apache.spark.sql.connect.service.SparkConnectServer" in joined:
        return "spark"
    if "uvicorn" in joined or "api.main" in joined:
        return "api"
    if joined.startswith("nginx: master process"):  # its workers count for it
        return "proxy (nginx)"
    if "streams" in cmdline and "worker" in cmdline:
        env = environ.split(b"\0")
        if b"STRIDE_STREAMS_ROLE=lake-sink" in env:
            return "worker: lake sink"
        if b"STRIDE_STREAMS_ROLE=battles" in env:
            return "worker: battles"
        return "worker: scoring"
    return "other"


def snapshot() -> Snapshot:
    """CPU seconds (user + system) of every process now, with its component: a process of
    the stack (a descendant of this one) that is not recognisably a component belongs to
    its nearest ancestor that is (e.g. uvicorn's worker processes to the API); a process
    that does not descend from this one is :data:`OUTSIDE`."""
    seconds: dict[int, float] = {}
    parent: dict[int, int] = {}
    own: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read(entry / "stat")
        if not stat:
            continue
        pid = int(entry.name)
        fields = stat[stat.rfind(b")") + 2 :].split()
        parent[pid] = int(fields[1])
        seconds[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
        cmdline = [p.decode(errors="replace") for p in _read(entry / "cmdline").split(b"\0") if p]
        own[pid] = component_of(pid, cmdline, _read(entry / "environ"))

    me = os.getpid()

    def in_stack(pid: int) -> bool:
        for _ in range(64):
            if pid == me:
                return True
            if pid not in parent:
                return False
            pid = parent[pid]
        return False

    def component(pid: int) -> str:
        if not in_stack(pid):
            return OUTSIDE
        seen = 0
        while own.get(pid, "other") == "other" and pid in parent and seen < 64:
            pid, seen = parent[pid], seen + 1
        return own.get(pid, "other")

    return {pid: (component(pid), s) for pid, s in seconds.items()}


def spent(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds per component between two snapshots."""
    totals: dict[str, float] = {}
    for pid, (component, seconds) in after.items():
        earlier = before.get(pid)
        delta = seconds - (earlier[1] if earlier and earlier[0] == component else 0.0)
        totals[component] = totals.get(component, 0.0) + max(delta, 0.0)
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def per_event_us(seconds: dict[str, float], events: int) -> dict[str, float]:
    """CPU microseconds per event, per component, and the stack's total (without
    :data:`OUTSIDE`, which is recorded beside it: how busy the rest of the machine was)."""
    table = {name: round(s * 1e6 / events, 1) for name, s in seconds.items()}
    table["total"] = round(
        sum(s for name, s in seconds.items() if name != OUTSIDE) * 1e6 / events, 1
    )
    return table
