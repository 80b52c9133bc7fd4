"""Records are partitioned as aiokafka's ``send`` (and the Java client) would."""

import random

from aiokafka.partitioner import DefaultPartitioner
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from api.kafka import partition_for


def test_partitions_are_those_of_aiokafka_and_kafka_python() -> None:
    rnd = random.Random(7)
    keys = [f"player-{rnd.randrange(10**9)}".encode() for _ in range(500)] + [b"", b"\xff"]
    for count in (1, 3, 4, 12):
        partitions = tuple(range(count))
        for key in keys:
            chosen = partition_for(key, partitions)
            assert chosen == DefaultPartitioner()(key, list(partitions), list(partitions))
            assert chosen == (kafka_python_murmur2(key) & 0x7FFFFFFF) % count
