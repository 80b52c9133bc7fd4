"""Metrics and alerts: the catalog, per-minute samples partitioned by day, hourly rollups,
alert states and episodes, subscriptions, the sampler's progress; BRIN indexes on the
times the sampler counts (processed_events.processed_at, reward_commands.issued_at).

Only new tables and indexes. The BRIN indexes are built without a lock that blocks writes
for long: BRIN summarizes block ranges, a few seconds for 10 M rows. ``metric_samples`` is
created without partitions; ``core.metrics.partitions.ensure_day_partitions`` adds each
day before a sample of it is written. A downgrade drops every metrics table.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now() -> sa.Column:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column(
            "kind", sa.String(length=64), nullable=False, comment="the catalog entry it comes from"
        ),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column(
            "source",
            sa.String(length=200),
            nullable=False,
            comment="table or topic it is sampled from",
        ),
        sa.Column(
            "game_id", sa.String(length=64), nullable=True, comment="the game it is about, if one"
        ),
        sa.Column("fire_factor", sa.Double(), server_default="3", nullable=False),
        sa.Column("resolve_factor", sa.Double(), server_default="2", nullable=False),
        sa.Column("window_minutes", sa.SmallInteger(), server_default="60", nullable=False),
        sa.Column("min_samples", sa.SmallInteger(), server_default="30", nullable=False),
        sa.Column("pending_points", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        _now(),
        sa.CheckConstraint(
            "fire_factor > 0 AND resolve_factor >= 0 AND resolve_factor < fire_factor",
            name=op.f("ck_metrics_rule_factors"),
        ),
        sa.CheckConstraint(
            "window_minutes BETWEEN 1 AND 1440 AND min_samples >= 1 AND pending_points >= 1",
            name=op.f("ck_metrics_rule_counts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metrics")),
        sa.UniqueConstraint("key", name=op.f("uq_metrics_key")),
    )
    op.create_table(
        "metric_samples",
        sa.Column("metric_id", sa.Integer(), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column(
            "sampled_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("metric_id", "minute", name=op.f("pk_metric_samples")),
        postgresql_partition_by="RANGE (minute)",
    )
    op.create_table(
        "metric_rollups_hourly",
        sa.Column("metric_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.SmallInteger(), nullable=False),
        sa.Column("total", sa.Double(), nullable=False),
        sa.Column("total_sq", sa.Double(), nullable=False),
        sa.Column("min", sa.Double(), nullable=False),
        sa.Column("max", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("metric_id", "hour", name=op.f("pk_metric_rollups_hourly")),
    )
    op.create_index(
        "ix_metric_samples_minute_brin", "metric_samples", ["minute"], postgresql_using="brin"
    )
    op.create_table(
        "metric_rollup_hours",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "rolled_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("hour", name=op.f("pk_metric_rollup_hours")),
    )
    op.create_table(
        "metric_alert_states",
        sa.Column("metric_id", sa.Integer(), nullable=False),
        sa.Column("last_minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("points_above", sa.Integer(), server_default="0", nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["metric_id"],
            ["metrics.id"],
            name=op.f("fk_metric_alert_states_metric_id_metrics"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("metric_id", name=op.f("pk_metric_alert_states")),
    )
    op.create_table(
        "metric_alerts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("metric_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False, comment="firing, then resolved"),
        sa.Column("fired_minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_value", sa.Double(), nullable=False),
        sa.Column("baseline", sa.Double(), nullable=False, comment="trailing mean when it fired"),
        sa.Column("threshold", sa.Double(), nullable=False, comment="fire_factor x baseline"),
        sa.Column("resolved_minute", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_value", sa.Double(), nullable=True),
        sa.Column("notified", sa.String(length=16), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        _now(),
        sa.ForeignKeyConstraint(
            ["metric_id"],
            ["metrics.id"],
            name=op.f("fk_metric_alerts_metric_id_metrics"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_alerts")),
    )
    op.create_index(
        "ix_metric_alerts_metric_id_fired_minute", "metric_alerts", ["metric_id", "fired_minute"]
    )
    op.create_index(
        "ix_metric_alerts_unnotified",
        "metric_alerts",
        ["id"],
        postgresql_where=sa.text("notified IS DISTINCT FROM state"),
    )
    op.create_table(
        "metric_subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("metric_id", sa.Integer(), nullable=False),
        sa.Column("owner_kind", sa.String(length=8), nullable=False, comment="user or game"),
        sa.Column("owner_id", sa.String(length=128), nullable=False),
        sa.Column("webhook_url", sa.String(length=2048), nullable=False),
        _now(),
        sa.ForeignKeyConstraint(
            ["metric_id"],
            ["metrics.id"],
            name=op.f("fk_metric_subscriptions_metric_id_metrics"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_subscriptions")),
    )
    op.create_index(
        op.f("ix_metric_subscriptions_metric_id"), "metric_subscriptions", ["metric_id"]
    )
    op.create_index(
        "uq_metric_subscriptions_owner_metric_url",
        "metric_subscriptions",
        ["owner_kind", "owner_id", "metric_id", "webhook_url"],
        unique=True,
    )
    op.create_table(
        "metric_sampler_progress",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_minute", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_metric_sampler_progress")),
    )
    op.create_index(
        "ix_processed_events_processed_at_brin",
        "processed_events",
        ["processed_at"],
        postgresql_using="brin",
    )
    op.create_index(
        "ix_reward_commands_issued_at_brin",
        "reward_commands",
        ["issued_at"],
        postgresql_using="brin",
    )


def downgrade() -> None:
    op.drop_index("ix_reward_commands_issued_at_brin", table_name="reward_commands")
    op.drop_index("ix_processed_events_processed_at_brin", table_name="processed_events")
    for table in (
        "metric_sampler_progress",
        "metric_subscriptions",
        "metric_alerts",
        "metric_alert_states",
        "metric_rollup_hours",
        "metric_rollups_hourly",
        "metric_samples",  # its day partitions go with it
        "metrics",
    ):
        op.drop_table(table)
