"""Tables of the metrics domain: the catalog, the samples (partitioned by day), the hourly
rollups, the alert states and episodes, the subscriptions, the sampler's progress.

Sized for 10,000 metrics: a minute of samples is 10,000 rows, a day 14.4 M. ``metric_samples``
is range-partitioned by day on ``minute`` (``core.metrics.partitions`` creates the days ahead
and drops those past retention in O(1)); its key ``(metric_id, minute)`` makes a sample
idempotent and serves a metric's 24 h series as one index range. ``metric_rollups_hourly``
keeps count, sum, sum of squares, min and max per metric and hour, long after the minutes
are gone (mean and standard deviation follow from them).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Uuid,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.chain.models import ChainLogRow
from core.events.models import ProcessedEvent, RewardCommandRow
from core.platform.db import Base


class Metric(Base):
    """One metric of the catalog. ``key`` is its stable public id (``game.events/tri``)."""

    __tablename__ = "metrics"
    __table_args__ = (
        CheckConstraint(
            "fire_factor > 0 AND resolve_factor >= 0 AND resolve_factor < fire_factor",
            name="rule_factors",
        ),
        CheckConstraint(
            "window_minutes BETWEEN 1 AND 1440 AND min_samples >= 1 AND pending_points >= 1",
            name="rule_counts",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(64), comment="the catalog entry it comes from")
    description: Mapped[str] = mapped_column(String(500))
    unit: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(200), comment="table or topic it is sampled from")
    game_id: Mapped[str | None] = mapped_column(String(64), comment="the game it is about, if one")
    fire_factor: Mapped[float] = mapped_column(Double, server_default="3")
    resolve_factor: Mapped[float] = mapped_column(Double, server_default="2")
    window_minutes: Mapped[int] = mapped_column(SmallInteger, server_default="60")
    min_samples: Mapped[int] = mapped_column(SmallInteger, server_default="30")
    pending_points: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def __str__(self) -> str:
        return self.key


class MetricSample(Base):
    """One sample per metric per minute; partitioned by day (see the module docstring)."""

    __tablename__ = "metric_samples"
    __table_args__ = (
        # Samples arrive in time order: a BRIN index serves "every metric in these minutes"
        # (the ranking's partial hours, the rollup job) in a few pages per partition.
        Index("ix_metric_samples_minute_brin", "minute", postgresql_using="brin"),
        # A metric's series as an index-only scan: its samples sit on ~1,440 heap pages a
        # day (a minute of every metric is appended at a time), its index entries on ~20.
        Index(
            "ix_metric_samples_metric_id_minute_covering",
            "metric_id",
            "minute",
            postgresql_include=["value"],
        ),
        {"postgresql_partition_by": "RANGE (minute)"},
    )

    metric_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    value: Mapped[float] = mapped_column(Double)
    sampled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MetricRollupHourly(Base):
    """Per metric and hour: what mean, standard deviation, min and max need."""

    __tablename__ = "metric_rollups_hourly"

    metric_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    count: Mapped[int] = mapped_column(SmallInteger)
    total: Mapped[float] = mapped_column(Double)
    total_sq: Mapped[float] = mapped_column(Double)
    min: Mapped[float] = mapped_column(Double)
    max: Mapped[float] = mapped_column(Double)


class MetricRollupHour(Base):
    """An hour whose rollups are complete (the job wrote them after the hour and the
    sampler's backfill were over): the ranking reads these hours from the rollups."""

    __tablename__ = "metric_rollup_hours"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    rolled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MetricAlertState(Base):
    """The alert agent's state per metric: the last minute judged (a replayed or older
    sample changes nothing), the episode state and the open alert, if any."""

    __tablename__ = "metric_alert_states"

    metric_id: Mapped[int] = mapped_column(
        ForeignKey("metrics.id", ondelete="CASCADE"), primary_key=True
    )
    last_minute: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16))
    points_above: Mapped[int] = mapped_column(Integer, server_default="0")
    alert_id: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MetricAlert(Base):
    """One alert episode: fired once, resolved once. ``notified`` is what Alertmanager was
    last told (the outbox: ``firing``/``resolved`` rows whose ``notified`` differs are sent)."""

    __tablename__ = "metric_alerts"
    __table_args__ = (
        Index("ix_metric_alerts_metric_id_fired_minute", "metric_id", "fired_minute"),
        Index(
            "ix_metric_alerts_unnotified",
            "id",
            postgresql_where="notified IS DISTINCT FROM state",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    metric_id: Mapped[int] = mapped_column(ForeignKey("metrics.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), comment="firing, then resolved")
    fired_minute: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fired_value: Mapped[float] = mapped_column(Double)
    baseline: Mapped[float] = mapped_column(Double, comment="trailing mean when it fired")
    threshold: Mapped[float] = mapped_column(Double, comment="fire_factor x baseline")
    resolved_minute: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_value: Mapped[float | None] = mapped_column(Double)
    notified: Mapped[str | None] = mapped_column(String(16))
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MetricSubscription(Base):
    """A webhook that Alertmanager calls when a metric fires and when it resolves."""

    __tablename__ = "metric_subscriptions"
    __table_args__ = (
        Index(
            "uq_metric_subscriptions_owner_metric_url",
            "owner_kind",
            "owner_id",
            "metric_id",
            "webhook_url",
            unique=True,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    metric_id: Mapped[int] = mapped_column(ForeignKey("metrics.id", ondelete="CASCADE"), index=True)
    owner_kind: Mapped[str] = mapped_column(String(8), comment="user or game")
    owner_id: Mapped[str] = mapped_column(String(128))
    webhook_url: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MetricSamplerProgress(Base):
    """The last minute the sampler finished (written, published); restarts resume after it."""

    __tablename__ = "metric_sampler_progress"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_minute: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# The sampler counts a minute of the events domain's tables by time. Their rows are
# appended in time order, so a BRIN index (a few pages for 10 M rows) turns those counts
# into range reads; they live here because the sampler is their only reader.
Index(
    "ix_processed_events_processed_at_brin",
    ProcessedEvent.processed_at,
    postgresql_using="brin",
)
Index(
    "ix_reward_commands_issued_at_brin",
    RewardCommandRow.issued_at,
    postgresql_using="brin",
)
# The chain metrics count a minute of block time (transfer volume, sales); logs are
# appended in block order.
Index(
    "ix_chain_logs_block_timestamp_brin",
    ChainLogRow.block_timestamp,
    postgresql_using="brin",
)
