"""Kafka topic names of the streaming spine, their partition counts, and idempotent creation."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.platform.config import KafkaSettings

GAME_EVENTS = "game.events.v1"
GAME_EVENTS_DLQ = "game.events.dlq.v1"
REWARD_COMMANDS = "rewards.commands.v1"
REWARD_OUTCOMES = "rewards.outcomes.v1"
WEARABLE_SAMPLES = "wearable.samples.v1"
WEARABLE_SAMPLES_DLQ = "wearable.samples.dlq.v1"
METRIC_SAMPLES = "metrics.samples.v1"
METRIC_SAMPLES_DLQ = "metrics.samples.dlq.v1"
CHAIN_LOGS = "chain.logs.v1"
CHAIN_LOGS_DLQ = "chain.logs.dlq.v1"
BATTLE_REQUESTS = "battles.requests.v1"
BATTLE_REQUESTS_DLQ = "battles.requests.dlq.v1"
DEAD_LETTER_TOPICS = (
    GAME_EVENTS_DLQ,
    WEARABLE_SAMPLES_DLQ,
    METRIC_SAMPLES_DLQ,
    CHAIN_LOGS_DLQ,
    BATTLE_REQUESTS_DLQ,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    description: str


TOPICS = (
    TopicSpec(GAME_EVENTS, "GameEvent v1 from game servers, keyed by player_id"),
    TopicSpec(GAME_EVENTS_DLQ, "DeadLetter v1: messages of game.events.v1 that failed validation"),
    TopicSpec(REWARD_COMMANDS, "RewardCommand v1: mint/burn of the game token, keyed by player_id"),
    TopicSpec(
        REWARD_OUTCOMES,
        "RewardOutcome v1: a mint/burn confirmed on chain or failed, keyed by player_id",
    ),
    TopicSpec(WEARABLE_SAMPLES, "WearableSample v1 from wearable uploads, keyed by user_id"),
    TopicSpec(WEARABLE_SAMPLES_DLQ, "DeadLetter v1: messages of wearable.samples.v1 not valid"),
    TopicSpec(METRIC_SAMPLES, "MetricSample v1: one per metric per minute, keyed by metric key"),
    TopicSpec(METRIC_SAMPLES_DLQ, "DeadLetter v1: messages of metrics.samples.v1 not valid"),
    TopicSpec(CHAIN_LOGS, "ChainLog v1: decoded EVM logs and retractions, keyed by chain:contract"),
    TopicSpec(CHAIN_LOGS_DLQ, "DeadLetter v1: messages of chain.logs.v1 that failed validation"),
    TopicSpec(BATTLE_REQUESTS, "BattleRequest v1: battles queued by game servers, keyed by game"),
    TopicSpec(BATTLE_REQUESTS_DLQ, "DeadLetter v1: messages of battles.requests.v1 not valid"),
)


def ensure_topics(kafka: KafkaSettings) -> list[str]:
    """Create every topic that does not exist yet, with the settings' partitions and
    replication factor; returns the names created (idempotent)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import (
        KafkaConnectionError,
        KafkaTimeoutError,
        TopicAlreadyExistsError,
    )

    from core.platform.kafka_security import connection_failure, kafka_python_options

    partitions, replication_factor = kafka.kafka_topic_partitions, kafka.kafka_replication_factor
    try:
        admin = KafkaAdminClient(
            **kafka_python_options(kafka),
            client_id="stride-topics",
            request_timeout_ms=10_000,
            bootstrap_timeout_ms=10_000,
        )
    except KafkaTimeoutError as exc:
        raise KafkaConnectionError(connection_failure(kafka)) from exc
    try:
        existing = set(admin.list_topics())
        missing = [t.name for t in TOPICS if t.name not in existing]
        created = []
        for name in missing:
            try:
                topic = NewTopic(name, partitions, replication_factor)
                admin.create_topics([topic])
                created.append(name)
            except TopicAlreadyExistsError:
                pass  # another process created it first
        if created:
            log.info("created topics %s with %d partitions", created, partitions)
        return created
    finally:
        admin.close()
