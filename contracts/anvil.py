"""The local EVM node: where the anvil binary (npm @foundry-rs/anvil) lives, how it is
started and how its readiness is probed. Kept free of web3 imports so the stack supervisor
stays quick to load.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CONTRACTS_DIR = Path(__file__).resolve().parent


class NodeError(RuntimeError):
    """The EVM node is missing, unreachable or refused a transaction."""


def anvil_binary() -> Path:
    """Path of the anvil binary shipped in the npm platform package (may not exist yet)."""
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "")
    package = f"anvil-{platform.system().lower()}-{arch}"
    return CONTRACTS_DIR / "node_modules" / "@foundry-rs" / package / "bin" / "anvil"


def anvil_command(
    port: int,
    chain_id: int = 31337,
    *,
    auto_impersonate: bool = False,
    state: Path | None = None,
) -> list[str]:
    """Command line of an anvil node on 127.0.0.1:`port` with a given chain id. With
    `state`, the chain is loaded from and saved to that file across restarts."""
    command = [
        str(anvil_binary()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chain-id",
        str(chain_id),
        "--silent",
    ]
    if auto_impersonate:
        command.append("--auto-impersonate")
    if state is not None:
        command += ["--state", str(state)]
    return command


def rpc_problem(url: str, timeout: float = 1.0) -> str | None:
    """None when `url` answers ``eth_chainId``, else a short reason (readiness probe)."""
    if not url.startswith(("http://", "https://")):
        return f"EVM RPC URL must be http(s): {url}"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer = json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError) as exc:
        return f"EVM RPC unreachable at {url} ({exc})"
    if "result" not in answer:
        return f"EVM RPC at {url} answered without a chain id: {answer}"
    return None


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Poll `url` until the node answers; fail fast if the process exits first."""
    deadline = time.monotonic() + timeout
    while (problem := rpc_problem(url, timeout=0.5)) is not None:
        if process.poll() is not None:
            raise NodeError(f"anvil exited with code {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise NodeError(f"anvil not ready after {timeout:.0f}s: {problem}")
        time.sleep(0.02)


@contextmanager
def running_anvil(
    port: int, chain_id: int = 31337, *, auto_impersonate: bool = False
) -> Iterator[str]:
    """Run a throw-away anvil for the duration of the block; yields its RPC URL."""
    if not anvil_binary().exists():
        raise NodeError(f"anvil not found at {anvil_binary()}; run `npm ci --prefix contracts`")
    process = subprocess.Popen(  # noqa: S603 (argv built from our own binary path)
        anvil_command(port, chain_id, auto_impersonate=auto_impersonate),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
