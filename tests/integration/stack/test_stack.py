"""The supervisor with real processes: idempotent start, stale PIDs, busy ports, bad binaries,
PostgreSQL failing to start, status and logs through the CLI."""

import json
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.services import POSTGRES
from cli.stack import Service, Stack, StackError, free_port
from core.platform.config import Settings
from core.platform.probes import http_problem


def http_service(port: int, name: str = "web") -> Service:
    return Service(
        name=name,
        description="a tiny HTTP server",
        command=lambda _s: [sys.executable, "-m", "http.server", str(port), "-b", "127.0.0.1"],
        probe=lambda _s: http_problem(f"http://127.0.0.1:{port}/"),
        url=lambda _s: f"http://127.0.0.1:{port}",
        port=lambda _s: port,
    )


@pytest.fixture
def own_stack(tmp_path: Path):
    port = free_port()
    stack = Stack(Settings(state_dir=tmp_path), [http_service(port)])
    yield stack, port
    stack.down(report=lambda _m: None)


def test_up_twice_is_harmless_and_down_stops(own_stack) -> None:
    stack, _port = own_stack
    messages: list[str] = []
    stack.up(report=messages.append)
    pid = stack.pid("web")
    assert pid and stack.status("web").ready
    stack.up(report=messages.append)
    assert stack.pid("web") == pid
    assert any("already running" in m for m in messages)
    stack.down(report=messages.append)
    assert stack.pid("web") is None
    assert not stack.pid_file("web").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_service_stops_on_sigterm_even_if_the_launcher_ignored_and_blocked_it(
    own_stack,
) -> None:
    """Ignored and blocked signals are inherited across exec: the supervisor resets them, so
    a service started from such a process still stops on SIGTERM instead of being killed."""
    stack, _port = own_stack
    messages: list[str] = []
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        stack.up(report=messages.append)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        signal.signal(signal.SIGTERM, previous)
    pid = stack.pid("web")
    assert pid is not None
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    sigterm = 1 << (signal.SIGTERM - 1)
    assert not int(fields["SigIgn"], 16) & sigterm and not int(fields["SigBlk"], 16) & sigterm
    stack.down(report=messages.append)
    assert not any("killing" in m for m in messages), messages
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_stale_pid_file_is_cleaned_up(own_stack) -> None:
    stack, _port = own_stack
    stack.run_dir.mkdir(parents=True)
    stack.pid_file("web").write_text(json.dumps({"pid": 2**22 - 1, "exe": sys.executable}))
    messages: list[str] = []
    stack.up(report=messages.append)
    assert any("stale PID file" in m for m in messages)
    assert stack.status("web").ready


def test_killed_service_is_seen_as_stopped_and_restarts(own_stack) -> None:
    stack, _port = own_stack
    stack.up(report=lambda _m: None)
    pid = stack.pid("web")
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert stack.status("web").running is False
    stack.up(report=lambda _m: None)
    assert stack.status("web").ready and stack.pid("web") != pid


def test_busy_port_is_reported(own_stack) -> None:
    stack, port = own_stack
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(StackError, match=f"port {port} on 127.0.0.1 is already in use"):
            stack.up(report=lambda _m: None)


def test_missing_binary_is_reported(tmp_path: Path) -> None:
    missing = Service(
        name="ghost",
        description="not installed",
        command=lambda _s: ["stride-no-such-program"],
        probe=lambda _s: None,
        url=lambda _s: "",
        port=lambda _s: free_port(),
        missing_hint="Install ghost.",
    )
    with pytest.raises(StackError, match=r"'stride-no-such-program' not found\. Install ghost\."):
        Stack(Settings(state_dir=tmp_path), [missing]).up(report=lambda _m: None)


def test_postgres_failing_to_start_shows_its_log(postgres: Settings) -> None:
    state = Path(tempfile.mkdtemp(prefix="stride-broken-"))
    state.chmod(0o755)
    settings = Settings(state_dir=state, pg_port=free_port())
    stack = Stack(settings, [POSTGRES])
    try:
        # A valid cluster whose configuration PostgreSQL refuses.
        POSTGRES.prepare(settings, lambda _m: None)
        conf = state / "postgres" / "data" / "postgresql.conf"
        conf.write_text(conf.read_text() + "\nshared_buffers = 'lots'\n")
        with pytest.raises(StackError) as failure:
            stack.up(report=lambda _m: None)
        message = str(failure.value)
        assert "postgres failed to start" in message
        assert "shared_buffers" in message  # the tail of PostgreSQL's own log
        assert stack.pid("postgres") is None
    finally:
        stack.down(report=lambda _m: None)


def test_cli_status_json_and_logs(postgres: Settings) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["status", "postgres", "--json"])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.output)
    assert entry["name"] == "postgres" and entry["running"] and entry["ready"]
    assert entry["pid"] > 0
    assert entry["url"].endswith(f":{postgres.pg_port}/stride")
    logs = runner.invoke(app, ["logs", "postgres", "-n", "5"])
    assert logs.exit_code == 0
    assert "database system is ready" in Path(entry["log"]).read_text()
    unknown = runner.invoke(app, ["logs", "nope"])
    assert unknown.exit_code == 1
    assert "unknown service" in unknown.output


def test_cli_up_is_idempotent(postgres: Settings) -> None:
    result = CliRunner().invoke(app, ["up", "postgres"])
    assert result.exit_code == 0, result.output
    assert "already running" in result.output
