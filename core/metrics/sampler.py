"""The sampler: one sample per metric per minute into ``metric_samples`` and ``metrics.samples.v1``.

Per minute, after it has ended (plus ``metrics_sample_lag_s`` so the last transactions of
the minute are committed): read every metric (``core.metrics.sources``), insert the samples
``ON CONFLICT (metric_id, minute) DO NOTHING`` (the first reading of a minute wins), publish
the stored samples of that minute, then record the minute as done. A crash anywhere before
that record re-does the minute on restart: the insert changes nothing and the re-published
samples are deduplicated by the alert agent on ``(metric, minute)``. A restart catches up on
at most ``metrics_backfill_minutes``; older minutes stay gaps, never zeros.

It runs as the ``sampler`` service of ``stride up`` (``python -m core.metrics.sampler``): one
clock-driven loop, apart from the Faust workers so that a rebalance never delays a minute.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.metrics import partitions
from core.metrics.catalog import MARKET_PRICE, MARKET_VOLUME, catalog, market_pairs, metric_key
from core.metrics.catalog import sync_catalog as sync_metrics_catalog
from core.metrics.contracts import MetricSampleV1
from core.metrics.market import MarketDataSource
from core.metrics.rules import minute_of
from core.metrics.sources import TopicCounter, chain_readings, table_readings, topic_readings
from core.platform.config import KafkaSettings, Settings
from core.platform.db import json_rows

log = logging.getLogger(__name__)
PROGRESS = "sampler"

Publish = Callable[[list[MetricSampleV1]], None]


def due_minutes(
    last_done: datetime | None, now: datetime, lag_s: float, backfill_minutes: int
) -> list[datetime]:
    """The minutes to sample at ``now``, oldest first: every ended minute after
    ``last_done`` (at most ``backfill_minutes`` back); only the last one on a first start."""
    last_ready = minute_of(now - timedelta(seconds=lag_s)) - timedelta(minutes=1)
    if last_done is None:
        return [last_ready]
    first = max(last_done + timedelta(minutes=1), last_ready - timedelta(minutes=backfill_minutes))
    count = int((last_ready - first) / timedelta(minutes=1)) + 1
    return [first + timedelta(minutes=i) for i in range(max(0, count))]


# The samples, and in the same statement each new one added into its hour's rollup (so
# the rollups are always current and the ranking reads whole hours from them); a sample
# that existed adds nothing.
_INSERT = text(
    """
    WITH inserted AS (
        INSERT INTO metric_samples (metric_id, minute, value)
        SELECT s.metric_id, :minute, s.value
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS s(metric_id int, value float8)
        ON CONFLICT (metric_id, minute) DO NOTHING
        RETURNING metric_id, value
    )
    INSERT INTO metric_rollups_hourly AS r (metric_id, hour, count, total, total_sq, min, max)
    SELECT metric_id, date_trunc('hour', CAST(:minute AS timestamptz), 'UTC'), 1, value,
        value * value, value, value
    FROM inserted
    ON CONFLICT (metric_id, hour) DO UPDATE SET count = r.count + 1,
        total = r.total + excluded.total, total_sq = r.total_sq + excluded.total_sq,
        min = least(r.min, excluded.min), max = greatest(r.max, excluded.max)
    """
)
_HOUR_ROLLED = text(
    """
    INSERT INTO metric_rollup_hours (hour)
    VALUES (date_trunc('hour', CAST(:minute AS timestamptz), 'UTC'))
    ON CONFLICT (hour) DO NOTHING
    """
)
_STORED = text(
    """
    SELECT m.id, m.key, s.value, s.sampled_at FROM metric_samples s JOIN metrics m
        ON m.id = s.metric_id WHERE s.minute = :minute AND m.id = ANY(:ids) ORDER BY m.id
    """
)


@dataclass
class Sampler:
    engine: Engine
    settings: Settings
    publish: Publish
    counter: TopicCounter | None = None
    market: MarketDataSource | None = None
    _days: set = field(default_factory=set)

    def last_done(self) -> datetime | None:
        with self.engine.connect() as conn:
            return conn.execute(
                text("SELECT last_minute FROM metric_sampler_progress WHERE name = :n"),
                {"n": PROGRESS},
            ).scalar_one_or_none()

    def sync_catalog(self) -> int:
        return sync_metrics_catalog(self.engine, self.settings, self.settings)

    def sample(self, minute: datetime) -> list[MetricSampleV1]:
        """Read, store and publish one minute; returns the samples published."""
        with self.engine.connect() as conn:
            metrics = catalog(conn)
            readings = table_readings(conn, metrics, minute)
            readings |= chain_readings(conn, metrics, minute)
        if self.counter is not None:
            readings |= topic_readings(self.counter, metrics, minute)
        if self.market is not None:
            for candle in self.market.minute(market_pairs(self.settings), minute):
                readings[metric_key(MARKET_PRICE, candle.pair)] = candle.close
                readings[metric_key(MARKET_VOLUME, candle.pair)] = candle.volume
        return self.store_and_publish(minute, {m.key: m.id for m in metrics}, readings)

    def store_and_publish(
        self, minute: datetime, ids: dict[str, int], readings: dict[str, float]
    ) -> list[MetricSampleV1]:
        """Steps after the reading: insert (first reading wins), publish the stored
        samples, record the minute as done."""
        rows = [{"metric_id": ids[k], "value": v} for k, v in readings.items() if k in ids]
        self.ensure_partitions([minute.date()])
        with self.engine.begin() as conn:
            if rows:
                if minute.minute == 0:  # the sampler writes this hour from its start
                    conn.execute(_HOUR_ROLLED, {"minute": minute})
                conn.execute(_INSERT, {"minute": minute, **json_rows(rows)})
            stored = conn.execute(
                _STORED, {"minute": minute, "ids": [r["metric_id"] for r in rows]}
            ).all()
        samples = [
            MetricSampleV1(
                metric_id=row.id,
                metric_key=row.key,
                minute=minute,
                value=row.value,
                sampled_at=row.sampled_at,
            )
            for row in stored
        ]
        if samples:
            self.publish(samples)
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO metric_sampler_progress (name, last_minute) VALUES (:n, :m)"
                    " ON CONFLICT (name) DO UPDATE SET last_minute = GREATEST("
                    "metric_sampler_progress.last_minute, excluded.last_minute)"
                ),
                {"n": PROGRESS, "m": minute},
            )
        return samples

    def ensure_partitions(self, days: Sequence) -> None:
        missing = [d for d in days if d not in self._days]
        if not missing:
            return
        with self.engine.begin() as conn:
            partitions.ensure_day_partitions(conn, missing)
        self._days.update(missing)

    def maintain(self, now: datetime) -> None:
        """The hourly job: partitions two days ahead, retention, the last hour's rollups."""
        today = now.date()
        self.ensure_partitions([today + timedelta(days=i) for i in range(3)])
        with self.engine.begin() as conn:
            dropped = partitions.drop_expired_partitions(
                conn, today, self.settings.metrics_retention_days
            )
            # The last ended hour, and those a restart's backfill may still have added
            # minutes to since the previous run.
            hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
            rolled = partitions.rollup_hour(conn, hour)
            for back in range(1, 1 + math.ceil(self.settings.metrics_backfill_minutes / 60)):
                partitions.rollup_hour(conn, hour - timedelta(hours=back))
            partitions.prune_rollups(conn, now, self.settings.metrics_rollup_retention_days)
        self._days.difference_update(dropped)
        log.info(
            "metrics maintenance: rolled up %d metrics of %s, dropped %s", rolled, hour, dropped
        )

    def run_due(self, now: datetime) -> int:
        """Sample every due minute; returns how many minutes were sampled."""
        minutes = due_minutes(
            self.last_done(),
            now,
            self.settings.metrics_sample_lag_s,
            self.settings.metrics_backfill_minutes,
        )
        for minute in minutes:
            samples = self.sample(minute)
            log.info("sampled %s: %d samples", minute.isoformat(), len(samples))
        return len(minutes)


def kafka_publisher(kafka: KafkaSettings) -> tuple[Publish, Callable[[], None]]:
    """A publisher to ``metrics.samples.v1`` (acks from every in-sync replica) and its close."""
    from kafka import KafkaProducer

    from core.platform.kafka_security import kafka_python_options
    from core.platform.topics import METRIC_SAMPLES

    producer = KafkaProducer(**kafka_python_options(kafka), acks="all", linger_ms=5)

    def publish(samples: list[MetricSampleV1]) -> None:
        futures = [
            producer.send(
                METRIC_SAMPLES, key=s.metric_key.encode(), value=s.model_dump_json().encode()
            )
            for s in samples
        ]
        producer.flush()
        for future in futures:
            future.get(timeout=30)

    return publish, producer.close


def main() -> None:  # pragma: no cover - the service's loop; its steps are tested
    from core.metrics.alertmanager import sync_alertmanager_config
    from core.metrics.market import KlinesMarketData
    from core.metrics.sources import KafkaTopicCounter
    from core.platform.config import get_settings
    from core.platform.db import engine_for
    from core.platform.topics import ensure_topics

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)  # one line per minute, not per socket
    settings = get_settings()
    ensure_topics(settings)
    engine = engine_for(settings.db_url, pool_size=2)
    publish, close = kafka_publisher(settings)
    market = KlinesMarketData(settings.metrics_market_url) if settings.metrics_market_url else None
    sampler = Sampler(engine, settings, publish, KafkaTopicCounter(settings), market)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    last_hour: datetime | None = None
    ready = settings.state_dir / "run" / "sampler.ready"
    while not stop.is_set():
        now = datetime.now(UTC)
        try:
            sampler.sync_catalog()
            sampler.run_due(now)  # before the hourly job, so its rollups see the caught-up minutes
            hour = now.replace(minute=0, second=0, microsecond=0)
            if hour != last_hour:
                sampler.maintain(now)
                last_hour = hour
            sync_alertmanager_config(engine, settings)
            ready.parent.mkdir(parents=True, exist_ok=True)
            ready.write_text(now.isoformat())
        except Exception:
            log.exception("sampling failed; retrying at the next minute")
        # Wake up when the next minute is due (a clock, not a wait for readiness).
        due = minute_of(now) + timedelta(minutes=1, seconds=settings.metrics_sample_lag_s)
        stop.wait(max(1.0, (due - datetime.now(UTC)).total_seconds()))
    close()


if __name__ == "__main__":
    main()
