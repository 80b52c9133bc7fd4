"""Content transfer benchmark: asset upload (tus) and download throughput through the API and
its nginx front door, against the raw disk copy rate of the same machine in the same run.

Starts a private stack (PostgreSQL, Apache Kafka, the API behind nginx) on free loopback
ports with the default local content store (the lake's raw zone on disk), writes a file of
random bytes and measures, each the best of ``--runs``:

1. disk copy: ``shutil.copyfile`` of the file into the state folder, with an fsync (the
   ceiling of anything that stores the bytes once);
2. upload: ``AssetsClient.upload`` of the file in ``--chunk-mb`` PATCHes, each with its
   SHA-256 ``Upload-Checksum`` (the client's whole-file hash is taken before the clock
   starts), until the version exists: the API spools each PATCH as a part while hashing it
   (the whole file's SHA-256 carried from PATCH to PATCH), then concatenates the parts in
   the kernel (``os.copy_file_range``; one part is linked, not copied) and fsyncs the result;
3. download: ``GET .../download`` streamed to a file by ``AssetsClient.download`` (which
   checks the SHA-256 at the end), and the same GET streamed to nowhere (the API and nginx
   alone).

Prints the figures and writes ``bench/results/content_transfer.json``.
Run: ``.venv/bin/python -m bench.content_transfer [--size-mb 256] [--chunk-mb 64]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stride_client.assets import DEFAULT_CHUNK_BYTES

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "content_transfer.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.content_transfer", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size-mb", type=int, default=256, help="size of the file (MiB)")
    parser.add_argument(
        "--chunk-mb", type=int, default=DEFAULT_CHUNK_BYTES >> 20, help="MiB per PATCH"
    )
    parser.add_argument("--runs", type=int, default=2, help="best of this many runs each")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def random_file(path: Path, size: int) -> str:
    """``size`` random bytes at ``path``; their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 8 << 20))
            digest.update(block)
            out.write(block)
            left -= len(block)
    return digest.hexdigest()


def mb_per_s(size: int, seconds: float) -> float:
    return round(size / (1 << 20) / seconds, 1)


def disk_copy(source: Path, folder: Path) -> float:
    target = folder / f"copy-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    shutil.copyfile(source, target)
    with target.open("rb+") as fh:
        os.fsync(fh.fileno())
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_at_start = round(os.getloadavg()[0], 2)  # other work on the machine skews figures
    from cli.services import isolated_stack_env

    state, env = isolated_stack_env("stride-bench-content-")
    os.environ.update(env)

    from cli.services import SERVICES
    from cli.stack import Stack
    from core.identity.game_keys import create_game
    from core.platform.config import get_settings
    from core.platform.db import reset_engines, session_scope
    from stride_client import AssetsClient, Transport

    get_settings.cache_clear()
    reset_engines()
    settings = get_settings()
    stack = Stack(settings, SERVICES)
    size = args.size_mb << 20
    runs: dict[str, list[float]] = {"disk_copy": [], "upload": [], "download": [], "stream": []}
    try:
        print(f"starting a private stack in {state}")
        stack.up(["proxy"], report=lambda m: print("  " + m))
        with session_scope() as session:
            key = create_game(session, "bench-content", "bench-content").api_key
        source = state / "bench-source.bin"
        print(f"writing {args.size_mb} MiB of random bytes...")
        sha = random_file(source, size)
        scratch = state / "scratch"
        scratch.mkdir()
        with Transport(settings.api_url, game_key=key, timeout_s=600) as transport:
            content = AssetsClient(transport)
            for run in range(args.runs):
                runs["disk_copy"].append(disk_copy(source, scratch))
                asset = content.create_asset("bundle", f"bench/{run}-{uuid.uuid4().hex[:6]}")
                started = time.perf_counter()
                done = content.upload(
                    asset.asset_id, source, chunk_bytes=args.chunk_mb << 20, sha256=sha
                )
                runs["upload"].append(time.perf_counter() - started)
                assert done.status == "completed", done
                dest = scratch / "downloaded.bin"
                started = time.perf_counter()
                got = content.download(asset.asset_id, dest, version=done.version)
                runs["download"].append(time.perf_counter() - started)
                assert got.sha256 == sha
                dest.unlink()
                path = f"/v1/content/assets/{asset.asset_id}/versions/{done.version}/download"
                started = time.perf_counter()
                with transport.stream("GET", path) as response:
                    received = sum(len(c) for c in response.iter_bytes(1 << 20))
                runs["stream"].append(time.perf_counter() - started)
                assert received == size
                print(
                    f"  run {run + 1}: disk copy {mb_per_s(size, runs['disk_copy'][-1])} MB/s, "
                    f"upload {mb_per_s(size, runs['upload'][-1])} MB/s, download "
                    f"{mb_per_s(size, runs['download'][-1])} MB/s (to nowhere "
                    f"{mb_per_s(size, runs['stream'][-1])} MB/s)"
                )
    finally:
        stack.down(report=lambda _m: None)
        reset_engines()
        shutil.rmtree(state, ignore_errors=True)

    best = {name: mb_per_s(size, min(times)) for name, times in runs.items()}
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "load_average_at_start": load_at_start,
        },
        "file_mib": args.size_mb,
        "chunk_mib": args.chunk_mb,
        "runs": args.runs,
        "mb_per_s": {
            "disk_copy": best["disk_copy"],
            "upload_through_api": best["upload"],
            "download_through_api_to_file": best["download"],
            "download_through_api_to_nowhere": best["stream"],
        },
        "ratio_to_disk_copy": {
            "upload": round(best["upload"] / best["disk_copy"], 2),
            "download_to_file": round(best["download"] / best["disk_copy"], 2),
            "download_to_nowhere": round(best["stream"] / best["disk_copy"], 2),
        },
        "seconds": {name: [round(t, 2) for t in times] for name, times in runs.items()},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["mb_per_s"], indent=2))
    ratios = result["ratio_to_disk_copy"]
    print(
        f"against the disk copy of this run: upload {ratios['upload']:.0%}, download to a file "
        f"{ratios['download_to_file']:.0%}, to nowhere {ratios['download_to_nowhere']:.0%}"
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
