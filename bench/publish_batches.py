"""Publishing a batch's records: one ``send`` per record vs whole per-partition batches.

What ``streams/app.py`` ``send_and_wait`` did before (one ``send`` and one future per record,
then wait for all) against what it does now (``core.platform.kafka_batches.queue_batches``:
grouped by partition, appended to whole batches, awaited once), on a private Apache Kafka,
with the producer settings the Faust workers use (acks=all, linger 5 ms, 512 KiB batches).
Per round, ``--batches`` batches of ``--records`` records shaped like a battle batch's
``match_result`` events (keyed by player, ~330 bytes), each way, interleaved; CPU
microseconds of this process per record (the broker's CPU is not counted) and wall time.
Prints the figures with the load average; run it when the machine is quiet.
Run: ``.venv/bin/python -m bench.publish_batches [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import time
import uuid
from typing import Any


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.publish_batches", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=10, help="batches per way and round")
    parser.add_argument("--records", type=int, default=2000, help="records per batch")
    return parser.parse_args(argv)


def records(count: int) -> list[tuple[bytes, bytes]]:
    value = (
        b'{"event_id":"%s","game_id":"battles3-1a2b3c","player_id":"p%d","type":"match_result",'
        b'"occurred_at":"2026-12-02T02:00:00Z","payload":{"match_id":"%s","outcome":"win",'
        b'"score":100,"opponent":"p12"},"received_at":"2026-12-02T02:00:00.123456Z"}'
    )
    out = []
    for i in range(count):
        player = i * 7919 % 40_000
        battle = str(uuid.uuid4()).encode()
        out.append((f"p{player}".encode(), value % (battle, player, battle)))
    return out


async def one_by_one(producer: Any, topic: str, batch: list[tuple[bytes, bytes]]) -> None:
    pending = [await producer.send(topic, value, key=key) for key, value in batch]
    await asyncio.gather(*pending)


async def whole_batches(producer: Any, topic: str, batch: list[tuple[bytes, bytes]]) -> None:
    from core.platform.kafka_batches import queue_batches

    await asyncio.gather(*await queue_batches(producer, topic, batch))


async def measure(bootstrap: str, args: argparse.Namespace) -> dict[str, Any]:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        max_batch_size=512 * 1024,
        max_request_size=2 * 1024 * 1024,
    )
    await producer.start()
    topic = "game.events.v1"
    ways = {"one send per record": one_by_one, "whole per-partition batches": whole_batches}
    cpu = dict.fromkeys(ways, 0.0)
    wall = dict.fromkeys(ways, 0.0)
    try:
        for warm in ways.values():
            await warm(producer, topic, records(args.records))
        for _round in range(args.rounds):
            for name, way in ways.items():
                work = [records(args.records) for _ in range(args.batches)]
                c, w = time.process_time(), time.perf_counter()
                for batch in work:
                    await way(producer, topic, batch)
                cpu[name] += time.process_time() - c
                wall[name] += time.perf_counter() - w
    finally:
        await producer.stop()
    count = args.rounds * args.batches * args.records
    return {
        name: {
            "cpu_us_per_record": round(cpu[name] * 1e6 / count, 1),
            "wall_ms_per_batch": round(wall[name] * 1000 / (args.rounds * args.batches), 1),
        }
        for name in ways
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from cli.services import isolated_stack_env

    state, env = isolated_stack_env("stride-bench-publish-")
    os.environ.update(env)
    from cli.services import SERVICES
    from cli.stack import Stack
    from core.platform.config import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    stack = Stack(settings, SERVICES)
    load_at_start = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        stack.up(["kafka"], report=lambda m: print("  " + m))
        result = asyncio.run(measure(settings.kafka_bootstrap, args))
    finally:
        stack.down(report=lambda _m: None)
        shutil.rmtree(state, ignore_errors=True)
    load_at_end = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    for name, figures in result.items():
        print(f"{name}: {figures}")
    print(f"load average: {load_at_start} at the start, {load_at_end} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
