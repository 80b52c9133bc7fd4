"""Readings of one minute from the platform's own data: PostgreSQL tables and Kafka topics.

Every reading is recomputable for a past minute (rows are counted by the time they were
written, Kafka records by their timestamps), so a restarted sampler catches up on the
minutes it missed with the same figures it would have taken live. A minute with no events
is a true 0; a minute the sampler could not read at all is absent (a gap).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.metrics.catalog import (
    DLQ_MESSAGES,
    GAME_ACTIVE_PLAYERS,
    GAME_EVENTS,
    GAME_MATCHES,
    MARKETPLACE_FLOOR,
    MARKETPLACE_VOLUME,
    TOKEN_TRANSFERS,
    TOKENS_BURNED,
    TOKENS_MINTED,
    WEARABLE_SAMPLES_IN,
    CatalogEntry,
    collection_member,
    metric_key,
    token_member,
)
from core.platform.config import KafkaSettings
from core.platform.topics import WEARABLE_SAMPLES

_EVENTS = text(
    """
    SELECT game_id, count(*) AS events, count(DISTINCT player_id) AS players,
        count(*) FILTER (WHERE type = 'match_result') AS matches
    FROM processed_events WHERE processed_at >= :start AND processed_at < :end
    GROUP BY game_id
    """
)
_REWARDS = text(
    """
    SELECT token, action, sum(amount) AS amount FROM reward_commands
    WHERE issued_at >= :start AND issued_at < :end GROUP BY token, action
    """
)


def table_readings(
    conn: Connection, metrics: Sequence[CatalogEntry], minute: datetime
) -> dict[str, float]:
    """The PostgreSQL metrics of the catalog for ``minute`` (0 where nothing happened)."""
    window = {"start": minute, "end": minute + timedelta(minutes=1)}
    kinds = {GAME_EVENTS.kind, GAME_ACTIVE_PLAYERS.kind, GAME_MATCHES.kind}
    readings: dict[str, float] = {
        m.key: 0.0 for m in metrics if m.kind in kinds | {TOKENS_MINTED.kind, TOKENS_BURNED.kind}
    }
    if any(m.kind in kinds for m in metrics):
        for row in conn.execute(_EVENTS, window):
            for kind, figure in (
                (GAME_EVENTS, row.events),
                (GAME_ACTIVE_PLAYERS, row.players),
                (GAME_MATCHES, row.matches),
            ):
                key = metric_key(kind, row.game_id)
                if key in readings:
                    readings[key] = float(figure)
    for row in conn.execute(_REWARDS, window):
        kind = TOKENS_MINTED if row.action == "mint" else TOKENS_BURNED
        key = metric_key(kind, row.token)
        if key in readings:
            readings[key] = float(row.amount)
    return readings


# Chain logs are counted by their block's time (unix seconds), canonical ones only (as the
# indexer knows them when the minute is sampled): a minute's figure is the blocks of that
# minute, whenever their logs were projected.
_TRANSFERS = text(
    """
    SELECT l.chain_id, l.contract, sum((m->>'amount')::numeric) AS amount
    FROM chain_logs l CROSS JOIN LATERAL jsonb_array_elements(l.moves) AS m
    WHERE l.canonical AND l.event = 'Transfer' AND l.standard = 'erc20'
      AND l.block_timestamp >= :start AND l.block_timestamp < :end
    GROUP BY l.chain_id, l.contract
    """
)
_SALES = text(
    """
    SELECT chain_id, collection, currency, sum(price) AS volume FROM (
        SELECT s.chain_id, s.collection, l.args->>'currency' AS currency, s.price
        FROM marketplace_sales s JOIN chain_logs l
          ON l.canonical AND l.chain_id = s.chain_id AND l.contract = s.marketplace
          AND l.event = 'Listed' AND (l.args->>'listingId')::numeric = s.listing_id
        WHERE s.block_timestamp >= :start AND s.block_timestamp < :end
    ) sold GROUP BY chain_id, collection, currency
    """
)
# The floor as of the minute's end, from the logs (the marketplace_listings view says what
# is active now, not then): listed before the end, neither sold nor cancelled before it, and
# not expired (the contract refuses a purchase once expiry <= block time).
_FLOORS = text(
    """
    SELECT l.chain_id, l.args->>'collection' AS collection, l.args->>'currency' AS currency,
        min((l.args->>'price')::numeric) AS floor
    FROM chain_logs l
    WHERE l.canonical AND l.event = 'Listed' AND l.block_timestamp < :end
      AND (l.args->>'expiry')::bigint > :end
      AND NOT EXISTS (
        SELECT 1 FROM chain_logs x
        WHERE x.canonical AND x.chain_id = l.chain_id AND x.contract = l.contract
          AND x.event IN ('Sale', 'ListingCancelled')
          AND x.args->>'listingId' = l.args->>'listingId' AND x.block_timestamp < :end)
    GROUP BY 1, 2, 3
    """
)


def chain_readings(
    conn: Connection, metrics: Sequence[CatalogEntry], minute: datetime
) -> dict[str, float]:
    """Token transfer and marketplace volume (0 where nothing moved) and floor prices
    (absent where nothing was listed: no floor is not a floor of 0) for ``minute``."""
    kinds = {TOKEN_TRANSFERS.kind, MARKETPLACE_VOLUME.kind, MARKETPLACE_FLOOR.kind}
    wanted = {m.key for m in metrics if m.kind in kinds}
    if not wanted:
        return {}
    window = {
        "start": int(minute.timestamp()),
        "end": int((minute + timedelta(minutes=1)).timestamp()),
    }
    readings: dict[str, float] = {
        m.key: 0.0 for m in metrics if m.kind in (TOKEN_TRANSFERS.kind, MARKETPLACE_VOLUME.kind)
    }
    for row in conn.execute(_TRANSFERS, window):
        readings[metric_key(TOKEN_TRANSFERS, token_member(row.chain_id, row.contract))] = float(
            row.amount
        )
    for row in conn.execute(_SALES, window):
        member = collection_member(row.chain_id, row.collection, row.currency)
        readings[metric_key(MARKETPLACE_VOLUME, member)] = float(row.volume)
    for row in conn.execute(_FLOORS, window):
        member = collection_member(row.chain_id, row.collection, row.currency)
        readings[metric_key(MARKETPLACE_FLOOR, member)] = float(row.floor)
    return {k: v for k, v in readings.items() if k in wanted}


class TopicCounter(Protocol):
    def count(self, topic: str, start: datetime, end: datetime) -> int | None:
        """Records of ``topic`` timestamped in ``[start, end)``; None when unreadable."""


class KafkaTopicCounter:
    """Counts a topic's records in a time range from the broker's offset index
    (``ListOffsets`` by timestamp): exact per minute, and the same figure after a restart."""

    def __init__(self, kafka: KafkaSettings) -> None:
        from kafka import KafkaConsumer

        from core.platform.kafka_security import kafka_python_options

        self._consumer: Any = KafkaConsumer(
            **kafka_python_options(kafka),
            client_id="stride-metrics-sampler",
            request_timeout_ms=10_000,
        )

    def count(self, topic: str, start: datetime, end: datetime) -> int | None:
        from kafka import TopicPartition

        partitions = self._consumer.partitions_for_topic(topic)
        if not partitions:
            self._consumer.topics()  # a metadata request: the topic may be new to this client
            partitions = self._consumer.partitions_for_topic(topic)
        if not partitions:
            return None
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = self._consumer.end_offsets(tps)

        def offsets_at(at: datetime) -> dict[Any, int]:
            found = self._consumer.offsets_for_times({tp: int(at.timestamp() * 1000) for tp in tps})
            return {tp: (found[tp].offset if found.get(tp) else ends[tp]) for tp in tps}

        first, after = offsets_at(start), offsets_at(end)
        return sum(max(0, after[tp] - first[tp]) for tp in tps)

    def close(self) -> None:
        self._consumer.close()


def topic_readings(
    counter: TopicCounter, metrics: Sequence[CatalogEntry], minute: datetime
) -> dict[str, float]:
    """Dead-lettered messages per DLQ topic and wearable samples received, for ``minute``."""
    end = minute + timedelta(minutes=1)
    readings: dict[str, float] = {}
    for metric in metrics:
        if metric.kind == DLQ_MESSAGES.kind:
            topic = metric.key.split("/", 1)[1]
        elif metric.kind == WEARABLE_SAMPLES_IN.kind:
            topic = WEARABLE_SAMPLES
        else:
            continue
        counted = counter.count(topic, minute, end)
        if counted is not None:
            readings[metric.key] = float(counted)
    return readings
