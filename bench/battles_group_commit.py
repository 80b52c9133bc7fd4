"""The battle engine's batching alone, without the machine: ``streams.pipeline.run`` (a batch
window that opens after the write before it started, one write at a time) against
``run_coalesced`` (group commit: what queued while a write ran is the next write; the publish
overlaps the next write), on the same simulated stream and the same simulated write.

Records arrive at a steady ``--rate`` for ``--seconds``; a write of n records sleeps
``--write-fixed-ms + n * --write-per-record-ms`` (in a thread, as the real write: the
figures of docs/battles.md "Round 3": ~20 ms a transaction plus ~1-2 ms of wall per battle
on this machine under load), a publish ``--publish-ms``. The stream behaves as Faust's
``take_events``: a take's window starts when the agent asks for the next take, records
arriving meanwhile wait in the stream. Per record: from its arrival to its ack; p50/p99/max
per variant, and the writes' sizes. Sleeps, not CPU: the figures depend on the machine's
load only through timer jitter (the load average is printed beside them).

Run: ``.venv/bin/python -m bench.battles_group_commit [--rate 500] [--write-per-record-ms 1.5]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.battles import summary
from streams import pipeline

RESULTS = Path(__file__).resolve().parent / "results" / "battles_group_commit.json"


class SimulatedStream:
    """Records (offsets) arriving at a steady rate; ``take_events`` as Faust's: each take
    waits up to ``within`` from when it is asked for, or until ``max_`` records."""

    def __init__(self, rate: int, seconds: float) -> None:
        self.rate, self.total = rate, int(rate * seconds)
        self.arrived: dict[int, float] = {}
        self.acked: dict[int, float] = {}
        self.inbox: asyncio.Queue[SimpleNamespace] = asyncio.Queue()

    async def produce(self) -> None:
        start = time.perf_counter()
        for offset in range(self.total):
            delay = start + offset / self.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the steady pace of the producer
            self.arrived[offset] = time.perf_counter()
            message = SimpleNamespace(
                topic="t",
                partition=0,
                offset=offset,
                key=None,
                value=b"1",
                timestamp=time.time(),
                headers=None,
                incref=lambda: None,
            )
            self.inbox.put_nowait(SimpleNamespace(message=message))

    async def take_events(self, max_: int, within: float):  # type: ignore[no-untyped-def]
        while len(self.acked) < self.total:
            deadline = time.perf_counter() + within
            events: list[SimpleNamespace] = []
            while len(events) < max_:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                try:
                    events.append(await asyncio.wait_for(self.inbox.get(), left))
                except TimeoutError:
                    break
            if events:
                yield events

    async def ack(self, event: SimpleNamespace) -> None:
        self.acked.setdefault(event.message.offset, time.perf_counter())


async def one(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    stream = SimulatedStream(args.rate, args.seconds)
    sizes: list[int] = []

    def write(valid: list) -> int:
        sizes.append(len(valid))
        time.sleep((args.write_fixed_ms + len(valid) * args.write_per_record_ms) / 1000)
        return len(valid)

    async def send(_topic: str, _records: list) -> None:
        await asyncio.sleep(args.publish_ms / 1000)

    simulated = pipeline.Pipeline(
        name=f"simulated-{variant}",
        parse=lambda raw: raw,
        write=write,
        outcome=lambda n: pipeline.Outcome(str(n), publish={"out": [(None, b"")]}),
        dead_letter_topic=None,
    )
    run = pipeline.run if variant == "run" else pipeline.run_coalesced
    producing = asyncio.ensure_future(stream.produce())
    await run(
        stream,  # type: ignore[arg-type]
        simulated,
        batch_size=args.batch_size,
        within_s=args.within_s,
        send=lambda: send,
    )
    await producing
    latencies = [(stream.acked[o] - t) * 1000 for o, t in stream.arrived.items()]
    return {
        **summary(latencies),
        "writes": len(sizes),
        "mean_write_size": round(sum(sizes) / len(sizes), 1),
        "max_write_size": max(sizes),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.battles_group_commit")
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--within-s", type=float, default=0.1)
    parser.add_argument("--write-fixed-ms", type=float, default=20)
    parser.add_argument("--write-per-record-ms", type=float, default=1.5)
    parser.add_argument("--publish-ms", type=float, default=20)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("streams.pipeline").setLevel(logging.WARNING)  # a line per batch
    result: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items() if k != "output"}}
    for variant in ("run", "run_coalesced"):
        result[variant] = asyncio.run(one(variant, args))
        print(f"{variant}: {result[variant]}  (load {os.getloadavg()[0]:.2f})")
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
