"""Records grouped into whole per-partition batches: where ``send`` would put each, each
partition's in order, a full batch continued in the next. (The broker's side is tested on
the real stack: the battles' match results and the API's events reach their consumers.)"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from core.platform.kafka_batches import partition_for, queue_batches


class Recorder:
    """An aiokafka producer's batch API over a real (unstarted) producer's batch builder."""

    def __init__(self, max_batch_size: int = 16384) -> None:
        self.real = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", max_batch_size=max_batch_size)
        self.sent: list[tuple[int, list[tuple[bytes | None, bytes]]]] = []

    async def partitions_for(self, _topic: str) -> set[int]:
        return {0, 1, 2, 3}

    def create_batch(self):
        return self.real.create_batch()

    async def send_batch(self, batch, topic: str, *, partition: int) -> asyncio.Future:
        records = [(r.key, r.value) for r in _read(batch)]  # the records appended, read back
        self.sent.append((partition, records))
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def _read(batch) -> list:
    from aiokafka.record.default_records import DefaultRecordBatch

    return list(DefaultRecordBatch(bytes(batch._build())))


def test_each_record_goes_where_send_would_put_it_in_order() -> None:
    records = [(f"player-{i % 7}".encode(), f"v{i}".encode()) for i in range(200)]

    async def run() -> tuple[int, Recorder]:
        recorder = Recorder()  # aiokafka builds its producer inside a running loop
        futures = await queue_batches(recorder, "t", records)  # type: ignore[arg-type]
        await asyncio.gather(*futures)
        await recorder.real.stop()
        return len(futures), recorder

    futures, recorder = asyncio.run(run())
    assert futures == len(recorder.sent) == 4  # one batch per partition (7 keys, 4 partitions)
    partitioner = DefaultPartitioner()
    for partition, batch in recorder.sent:
        for key, _value in batch:
            assert key is not None
            assert partition == partitioner(key, [0, 1, 2, 3], [0, 1, 2, 3])
            assert partition == partition_for(key, (0, 1, 2, 3))
    by_partition: dict[int, list[bytes]] = {}
    for partition, batch in recorder.sent:
        by_partition.setdefault(partition, []).extend(v for _k, v in batch)
    expected: dict[int, list[bytes]] = {}
    for key, value in records:
        expected.setdefault(partition_for(key, (0, 1, 2, 3)), []).append(value)
    assert by_partition == expected  # nothing lost or doubled, each partition in order


def test_a_full_batch_continues_in_the_next_and_keyless_records_share_one_partition() -> None:
    records = [(None, b"x" * 1000) for _ in range(50)]

    async def run() -> Recorder:
        recorder = Recorder(max_batch_size=4096)
        await asyncio.gather(*await queue_batches(recorder, "t", records))  # type: ignore[arg-type]
        await recorder.real.stop()
        return recorder

    recorder = asyncio.run(run())
    assert len(recorder.sent) > 10  # 50 KB in batches of at most 4 KB
    assert len({partition for partition, _ in recorder.sent}) == 1
    assert sum(len(batch) for _, batch in recorder.sent) == 50
