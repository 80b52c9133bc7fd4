"""What the admin panel benchmarks share: the API as ``stride up`` runs it (uvicorn), from
this checkout or from another one (``--baseline DIR``, e.g. ``git archive main | tar -x -C
DIR``) against the same private PostgreSQL, a signed-in httpx client, the API's memory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "bench admin password"


def add_code_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--code",
        type=Path,
        action="append",
        help="a checkout whose API to measure (repeatable; default: this one)",
    )


@contextmanager
def private_database() -> Iterator[None]:
    """A private PostgreSQL migrated to head (settings in the environment), removed after."""
    from bench.leaderboard import private_postgres

    stack, state = private_postgres()
    try:
        yield
    finally:
        stack.down(report=lambda _m: None)  # type: ignore[attr-defined]
        shutil.rmtree(state, ignore_errors=True)


def measure_each(
    codes: list[Path] | None, measure: Callable[[Path], dict[str, object]]
) -> dict[str, object]:
    """``measure(checkout)`` of each checkout (default: this one), by label."""
    results = {}
    for code in codes or [REPO]:
        label = "this checkout" if code.resolve() == REPO else str(code)
        print(f"{label}:", flush=True)
        results[label] = measure(code.resolve())
    return results


def write_results(path: Path, benchmark: str, **figures: object) -> None:
    output = {
        "benchmark": benchmark,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **figures,
    }
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(output, indent=2) + "\n")
    print(f"wrote {path.relative_to(REPO)}")


def create_admin(username: str, role: str) -> None:
    """An admin user, made with the CLI of this checkout."""
    subprocess.run(
        [sys.executable, "-m", "cli.main", "admin", "create-user", username, "--role", role],
        cwd=REPO,
        env={**os.environ, "STRIDE_ADMIN_PASSWORD": PASSWORD, "PYTHONPATH": str(REPO)},
        check=True,
        capture_output=True,
    )


@contextmanager
def api_process(code: Path) -> Iterator[tuple[str, int]]:
    """uvicorn serving ``api.main:app`` of the checkout ``code``; yields (base URL, pid)."""
    from cli.stack import free_port

    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            *("-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)),
            "--no-access-log",
        ],
        cwd=code,
        env={**os.environ, "PYTHONPATH": str(code)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API of {code} did not start")
            time.sleep(0.1)  # readiness polling, bounded by the deadline
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def signed_in(url: str, username: str, timeout_s: float = 300.0) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=timeout_s) as client:
        response = client.post(
            "/admin/login",
            data={"username": username, "password": PASSWORD},
            follow_redirects=False,
        )
        if response.status_code != 302:
            raise RuntimeError(f"sign-in failed: {response.status_code} {response.text[:200]}")
        yield client


def memory_kb(pid: int) -> dict[str, int]:
    """Resident set size now and its peak (``VmHWM``) of a process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def reset_peak_memory(pid: int) -> None:
    """Start ``VmHWM`` afresh from the current RSS (Linux ``clear_refs``)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def machine() -> dict[str, object]:
    import platform

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": round(os.getloadavg()[0], 1),
    }
