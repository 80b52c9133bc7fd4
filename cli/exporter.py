"""``python -m cli.exporter``: the platform's own Prometheus exporter, on loopback.

What no stock exporter here gives, read fresh on every scrape: Kafka consumer lag per group
and partition and the record counts of the dead-letter topics (Debian has no Kafka
exporter), reward commands still pending and the age of the oldest (the read-only role),
and the free space of the filesystems holding the state folder and the database.
A source that cannot be read says so in ``stride_exporter_source_up{source=...}`` instead
of failing the scrape.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from core.platform.config import Settings, get_settings
from core.platform.consumer_lag import dead_letter_topics, read_lag, read_topic_counts
from core.platform.observability import logging_dict_config, serve_metrics

log = logging.getLogger("stride.exporter")

PENDING_REWARDS_SQL = (
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(issued_at)), 0) "
    "FROM reward_commands WHERE status = 'pending'"
)


def watched_paths(settings: Settings) -> dict[str, Path]:
    """The folders whose filesystems must not fill: state (Kafka, lake, backups) and the
    cluster's data (elsewhere when the cluster runs as another OS user)."""
    from cli.services import pg_data_dir

    paths = {"state": settings.state_dir, "postgres": pg_data_dir(settings)}
    if settings.backup_repo_dir:
        paths["backups"] = settings.backup_repo_dir
    return paths


class PlatformCollector(Collector):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "stride_exporter_source_up",
            "1 when the exporter could read the source",
            labels=["source"],
        )
        yield from self._kafka(up)
        yield from self._rewards(up)
        yield from self._chains(up)
        yield from self._disk()
        yield up

    def _kafka(self, up: GaugeMetricFamily) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "stride_kafka_consumer_lag",
            "Records of the partition its group has not committed yet",
            labels=["group", "topic", "partition"],
        )
        dead = GaugeMetricFamily(
            "stride_kafka_dead_letter_records",
            "Records in a dead-letter topic (end offsets summed over its partitions)",
            labels=["topic"],
        )
        try:
            rows = read_lag(self.settings)
            counts = read_topic_counts(self.settings, dead_letter_topics())
        except Exception as exc:
            log.warning("reading Kafka offsets failed: %r", exc)
            up.add_metric(["kafka"], 0)
            return
        for row in rows:
            lag.add_metric([row.group, row.topic, str(row.partition)], row.lag)
        for topic, count in counts.items():
            dead.add_metric([topic], count)
        up.add_metric(["kafka"], 1)
        yield lag
        yield dead

    def _rewards(self, up: GaugeMetricFamily) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy import text

        from core.platform.db import engine_for

        try:
            with engine_for(self.settings.readonly_db_url).connect() as conn:
                pending, oldest = conn.execute(text(PENDING_REWARDS_SQL)).one()
        except Exception as exc:
            log.warning("reading reward_commands failed: %r", exc)
            up.add_metric(["postgres"], 0)
            return
        up.add_metric(["postgres"], 1)
        yield GaugeMetricFamily(
            "stride_reward_commands_pending", "Reward commands not executed yet", value=pending
        )
        yield GaugeMetricFamily(
            "stride_reward_commands_oldest_pending_seconds",
            "Age of the oldest pending reward command (0 when none is pending)",
            value=float(oldest),
        )

    def _chains(self, up: GaugeMetricFamily) -> Iterator[GaugeMetricFamily]:
        """Per indexed chain: the node's head, the indexer's and the projections' blocks,
        the lag, the outbox and whether the last step failed (``chain_cursors``)."""
        from datetime import UTC, datetime

        from core.chain.status import chain_statuses
        from core.platform.db import engine_for

        try:
            with engine_for(self.settings.readonly_db_url).connect() as conn:
                chains = chain_statuses(
                    conn, datetime.now(UTC), self.settings.indexer_stall_after_s
                )
        except Exception as exc:
            log.warning("reading chain_cursors failed: %r", exc)
            up.add_metric(["chain"], 0)
            return
        up.add_metric(["chain"], 1)
        families = {
            "head": GaugeMetricFamily(
                "stride_chain_head_block", "The node's head block", labels=["chain_id"]
            ),
            "indexed": GaugeMetricFamily(
                "stride_chain_indexed_block",
                "The last block the indexer published to chain.logs.v1",
                labels=["chain_id"],
            ),
            "projected": GaugeMetricFamily(
                "stride_chain_projected_block",
                "The highest block whose logs the projections applied",
                labels=["chain_id"],
            ),
            "lag": GaugeMetricFamily(
                "stride_chain_lag_blocks",
                "Blocks between the node's head and the indexed block",
                labels=["chain_id"],
            ),
            "outbox": GaugeMetricFamily(
                "stride_chain_outbox_records",
                "Records committed by the indexer, not yet acknowledged by Kafka",
                labels=["chain_id"],
            ),
            "error": GaugeMetricFamily(
                "stride_chain_last_step_failed",
                "1 when the indexer's last step for the chain failed (see stride chain status)",
                labels=["chain_id"],
            ),
        }
        for chain in chains:
            label = [str(chain.chain_id)]
            for name, value in (
                ("head", chain.head),
                ("indexed", chain.indexed_block),
                ("projected", chain.projected_block),
                ("lag", chain.lag),
            ):
                if value is not None:
                    families[name].add_metric(label, value)
            families["outbox"].add_metric(label, chain.outbox)
            families["error"].add_metric(label, 1 if chain.last_error else 0)
        yield from families.values()

    def _disk(self) -> Iterator[GaugeMetricFamily]:
        avail = GaugeMetricFamily(
            "stride_filesystem_avail_bytes",
            "Bytes free for us on the folder's filesystem",
            labels=["name", "path"],
        )
        size = GaugeMetricFamily(
            "stride_filesystem_size_bytes",
            "Size of the folder's filesystem",
            labels=["name", "path"],
        )
        for name, path in watched_paths(self.settings).items():
            existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
            stats = os.statvfs(existing)
            avail.add_metric([name, str(path)], stats.f_bavail * stats.f_frsize)
            size.add_metric([name, str(path)], stats.f_blocks * stats.f_frsize)
        yield avail
        yield size


def main() -> None:
    import logging.config

    settings = get_settings()
    logging.config.dictConfig(logging_dict_config(settings.log_format))
    REGISTRY.register(PlatformCollector(settings))
    if not serve_metrics(settings.metrics_host, settings.exporter_port):
        raise SystemExit(f"port {settings.exporter_port} on {settings.metrics_host} is taken")
    log.info("serving on %s:%d", settings.metrics_host, settings.exporter_port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()  # the endpoint is served by a daemon thread


if __name__ == "__main__":
    main()
