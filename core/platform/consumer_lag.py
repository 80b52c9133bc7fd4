"""Kafka consumer lag per group and partition, and the record counts of dead-letter topics,
read from the broker's admin API (committed offsets against end offsets).

Read by the exporter Prometheus scrapes (``cli/exporter.py``) and by ``stride status``.
The lag of a partition is what its group has not committed yet: ``end - committed``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from core.platform.config import KafkaSettings
from core.platform.topics import TOPICS

TopicPartitionKey = tuple[str, int]


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


def lag_of(
    group: str, committed: Mapping[TopicPartitionKey, int], ends: Mapping[TopicPartitionKey, int]
) -> list[PartitionLag]:
    """One row per partition the group committed on, sorted; a partition without an end
    offset (topic deleted) is left out. Pure: the offsets are read by :func:`read_lag`."""
    return [
        PartitionLag(group, topic, partition, offset, ends[(topic, partition)])
        for (topic, partition), offset in sorted(committed.items())
        if (topic, partition) in ends and offset >= 0
    ]


def dead_letter_topics() -> list[str]:
    return [t.name for t in TOPICS if ".dlq." in t.name]


def _admin(kafka: KafkaSettings):
    from kafka.admin import KafkaAdminClient

    from core.platform.kafka_security import kafka_python_options

    return KafkaAdminClient(
        **kafka_python_options(kafka), client_id="stride-monitor", request_timeout_ms=5_000
    )


def _end_offsets(admin, partitions: Iterable[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    specs = {TopicPartition(t, p): OffsetSpec.LATEST for t, p in partitions}
    if not specs:
        return {}
    found = admin.list_partition_offsets(specs)
    return {(tp.topic, tp.partition): int(result.offset) for tp, result in found.items()}


def _partitions_of(admin, topics: Iterable[str]) -> list[TopicPartitionKey]:
    wanted = set(topics)
    found: list[TopicPartitionKey] = []
    for topic in admin.describe_topics(sorted(wanted)):
        if topic.get("error_code", 0) == 0:
            found.extend((topic["name"], p["partition_index"]) for p in topic["partitions"])
    return found


def read_lag(kafka: KafkaSettings) -> list[PartitionLag]:
    """The lag of every consumer group of the cluster, per partition it committed on."""
    admin = _admin(kafka)
    try:
        groups = [g["group_id"] if isinstance(g, dict) else g[0] for g in admin.list_groups()]
        if not groups:
            return []
        committed: dict[str, dict[TopicPartitionKey, int]] = {}
        for group in groups:
            offsets = admin.list_group_offsets({group: None}).get(group, {})
            committed[group] = {(tp.topic, tp.partition): om.offset for tp, om in offsets.items()}
        ends = _end_offsets(admin, {key for offsets in committed.values() for key in offsets})
        return [row for group in groups for row in lag_of(group, committed[group], ends)]
    finally:
        admin.close()


def read_topic_counts(kafka: KafkaSettings, topics: Iterable[str]) -> dict[str, int]:
    """Records written to each topic so far (sum of its partitions' end offsets)."""
    admin = _admin(kafka)
    try:
        ends = _end_offsets(admin, _partitions_of(admin, topics))
    finally:
        admin.close()
    counts = dict.fromkeys(topics, 0)
    for (topic, _partition), end in ends.items():
        counts[topic] = counts.get(topic, 0) + end
    return counts
