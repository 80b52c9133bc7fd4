"""A small process supervisor for the local stack.

Services are declared once (see ``cli/services.py``): a command, a readiness probe, a log
file, dependencies and optional hooks. ``Stack`` starts them in dependency order on
127.0.0.1, waits for each probe, records PIDs under ``<state_dir>/run`` and stops them in
reverse order. Starting twice is harmless; stale PID files left by a crash are cleaned up.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from core.platform.config import Settings

Reporter = Callable[[str], None]


def _default_signals() -> None:
    """In a service's process before it runs: every signal unblocked and at its default,
    whatever the launching process had (an ignored or blocked SIGTERM is inherited across
    exec, and a service that ignores it only stops when killed)."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(number, signal.SIG_DFL)


class StackError(RuntimeError):
    """A problem the user can act on; the message says what to do."""


@dataclass(frozen=True)
class Service:
    """One process of the local stack, declared as data."""

    name: str
    description: str
    command: Callable[[Settings], list[str]]
    probe: Callable[[Settings], str | None]  # None when ready, else why not
    url: Callable[[Settings], str]
    port: Callable[[Settings], int]
    depends_on: tuple[str, ...] = ()
    prepare: Callable[[Settings, Reporter], None] | None = None  # before the process starts
    after_ready: Callable[[Settings, Reporter], None] | None = None  # once the probe passes
    run_as: Callable[[Settings], str | None] = field(default=lambda _s: None)
    env: Callable[[Settings], dict[str, str]] = field(default=lambda _s: {})
    stop_signal: signal.Signals = signal.SIGTERM
    start_timeout: float = 60.0
    stop_timeout: float = 20.0  # then SIGKILL
    missing_hint: str = ""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    ready: bool
    pid: int | None
    url: str
    log: str
    problem: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "running": self.running,
            "ready": self.ready,
            "pid": self.pid,
            "url": self.url,
            "log": self.log,
            "problem": self.problem,
        }


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SHARED_ROOT = Path("/var/lib/stride")


def reachable_by(user: str, path: Path) -> bool:
    """Whether ``user`` can traverse every existing folder from / down to ``path``."""
    entry = pwd.getpwnam(user)
    groups = {entry.pw_gid, *(g.gr_gid for g in grp.getgrall() if user in g.gr_mem)}
    for folder in [*reversed(path.resolve().parents), path.resolve()]:
        try:
            info = folder.stat()
        except FileNotFoundError:
            return True  # created later by us, with our umask (traversable)
        if info.st_uid == entry.pw_uid:
            bit = stat.S_IXUSR
        elif info.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def private_dir(settings: Settings, user: str | None, name: str) -> Path:
    """``<state>/<name>``, the folder of a service's files, unless the service runs as OS
    user ``user`` (we are root) who cannot reach the state folder, e.g. a checkout under
    ``/root`` or in a ``mktemp -d`` folder (mode 0700). Opening up the user's folders is not
    ours to do, so such a service's folder is ``/var/lib/stride/<name>-<hash of the state
    folder>`` instead (the same folder on every start)."""
    default = settings.state_dir / name
    if user is None or reachable_by(user, settings.state_dir):
        return default
    digest = hashlib.sha256(str(settings.state_dir.resolve()).encode()).hexdigest()[:12]
    return SHARED_ROOT / f"{name}-{digest}"


def tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return "(no log written)"
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 64 * 1024))
        text = fh.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


class Stack:
    """Start, stop and inspect the declared services for one ``Settings``."""

    def __init__(self, settings: Settings, services: Iterable[Service]) -> None:
        self.settings = settings
        self.services = {s.name: s for s in services}
        self.run_dir = settings.state_dir / "run"
        self.log_dir = settings.state_dir / "logs"

    # ---- paths and process bookkeeping -------------------------------------------------
    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _recorded(self, name: str) -> dict | None:
        path = self.pid_file(name)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except (ValueError, OSError):
            return {"pid": -1, "exe": ""}

    @staticmethod
    def _alive(record: dict) -> bool:
        pid = record.get("pid", -1)
        if pid <= 0:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        try:  # guard against PID reuse after a reboot or crash
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            proc_stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        if proc_stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        exe = record.get("exe", cmdline)
        if os.path.basename(cmdline) == os.path.basename(exe):
            return True
        try:  # a program that rewrites its title (nginx: "nginx: master process ...")
            return os.readlink(f"/proc/{pid}/exe") == os.path.realpath(exe)
        except OSError:
            return False

    def pid(self, name: str) -> int | None:
        record = self._recorded(name)
        if record and self._alive(record):
            return int(record["pid"])
        return None

    def order(self, names: Iterable[str] | None = None) -> list[Service]:
        """Services (and their dependencies) in start order."""
        wanted = list(names) if names else list(self.services)
        unknown = [n for n in wanted if n not in self.services]
        if unknown:
            raise StackError(
                f"unknown service {', '.join(unknown)}; known: {', '.join(self.services)}"
            )
        ordered: list[Service] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if any(s.name == name for s in ordered):
                return
            if name in visiting:
                raise StackError(f"dependency cycle through {name}")
            visiting.add(name)
            for dep in self.services[name].depends_on:
                visit(dep)
            visiting.discard(name)
            ordered.append(self.services[name])

        for name in wanted:
            visit(name)
        return ordered

    # ---- status --------------------------------------------------------------------------
    def status(self, name: str) -> ServiceStatus:
        service = self.services[name]
        pid = self.pid(name)
        problem = service.probe(self.settings) if pid else "not running"
        return ServiceStatus(
            name=name,
            running=pid is not None,
            ready=pid is not None and problem is None,
            pid=pid,
            url=service.url(self.settings),
            log=str(self.log_file(name)),
            problem=problem,
        )

    # ---- start ---------------------------------------------------------------------------
    def up(self, names: Iterable[str] | None = None, report: Reporter = print) -> None:
        for service in self.order(names):
            self._start(service, report)

    def _start(self, service: Service, report: Reporter) -> None:
        name = service.name
        record = self._recorded(name)
        if record is not None and not self._alive(record):
            report(f"{name}: removing stale PID file (pid {record.get('pid')} is not running)")
            self.pid_file(name).unlink(missing_ok=True)
            record = None
        if record is not None:
            problem = self._wait_ready(service, lambda: self._alive(record), timeout=10)
            if problem:
                raise StackError(
                    f"{name} is running (pid {record['pid']}) but not ready: {problem}. "
                    f"Run `stride down {name}` and `stride up` again; log: {self.log_file(name)}"
                )
            report(f"{name}: already running (pid {record['pid']})")
            return

        command = service.command(self.settings)
        executable = shutil.which(command[0]) or (
            command[0] if os.access(command[0], os.X_OK) else None
        )
        if executable is None:
            raise StackError(f"{name}: program {command[0]!r} not found. {service.missing_hint}")
        port = service.port(self.settings)
        if not port_is_free("127.0.0.1", port):
            raise StackError(
                f"{name}: port {port} on 127.0.0.1 is already in use by another program. "
                f"Stop that program, or choose another port (see .env.example)."
            )
        if service.prepare:
            service.prepare(self.settings, report)

        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_file(name)
        report(f"{name}: starting ({service.description})")
        with log_path.open("ab") as log:
            log.write(f"\n--- stride: starting {name} at {time.ctime()} ---\n".encode())
            log.flush()
            process = subprocess.Popen(  # noqa: S603 - commands are declared in code
                [executable, *command[1:]],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **service.env(self.settings)},
                user=service.run_as(self.settings),
                preexec_fn=_default_signals,
            )
        self.pid_file(name).write_text(json.dumps({"pid": process.pid, "exe": executable}))
        problem = self._wait_ready(
            service, lambda: process.poll() is None, timeout=service.start_timeout
        )
        if problem:
            self.stop(name, report=lambda _m: None)
            raise StackError(
                f"{name} failed to start: {problem}\nlast lines of {log_path}:\n{tail(log_path)}"
            )
        if service.after_ready:
            service.after_ready(self.settings, report)
        report(f"{name}: ready at {service.url(self.settings)}")

    def _wait_ready(
        self, service: Service, is_running: Callable[[], bool], timeout: float
    ) -> str | None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        problem: str | None = "not started"
        while time.monotonic() < deadline:
            if not is_running():
                return "the process exited"
            problem = service.probe(self.settings)
            if problem is None:
                return None
            time.sleep(delay)  # readiness polling, bounded by the deadline
            delay = min(delay * 1.5, 0.5)
        return f"not ready after {timeout:.0f}s ({problem})"

    # ---- stop ----------------------------------------------------------------------------
    def down(self, names: Iterable[str] | None = None, report: Reporter = print) -> None:
        targets = self.order(names) if names else self.order()
        if names:  # stopping a service named explicitly does not stop its dependencies
            targets = [s for s in targets if s.name in set(names)]
        for service in reversed(targets):
            self.stop(service.name, report)

    def stop(self, name: str, report: Reporter = print, timeout: float | None = None) -> None:
        record = self._recorded(name)
        if record is None:
            report(f"{name}: not running")
            return
        if not self._alive(record):
            self.pid_file(name).unlink(missing_ok=True)
            report(f"{name}: not running (removed stale PID file)")
            return
        pid = int(record["pid"])
        service = self.services[name]
        timeout = service.stop_timeout if timeout is None else timeout
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, service.stop_signal)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._alive(record):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if self._alive(record):
            report(f"{name}: did not stop within {timeout:.0f}s, killing")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            killed_by = time.monotonic() + 10.0  # SIGKILL is not refused; exiting takes a moment
            while time.monotonic() < killed_by and self._alive(record):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                time.sleep(0.05)
        with contextlib.suppress(ChildProcessError):  # reap it if it was our child
            os.waitpid(pid, 0 if not self._alive(record) else os.WNOHANG)
        self.pid_file(name).unlink(missing_ok=True)
        report(f"{name}: stopped (pid {pid})")
