"""The monitoring services of the local stack: Prometheus, prometheus-postgres-exporter and
the platform's own exporter (``cli/exporter.py``), all bound to 127.0.0.1.

``stride up prometheus`` writes ``<state>/prometheus/prometheus.yml`` from the settings on
every start (:func:`prometheus_config`): every process's metrics endpoint on loopback, the
platform's alert rules (``deploy/prometheus/rules.yml``) and the Alertmanager at
``STRIDE_ALERTMANAGER_URL`` (started by its own service; until it runs, Prometheus still
evaluates the rules and shows the alerts on ``/alerts`` and ``/api/v1/alerts``).
"""

from __future__ import annotations

import json
import shutil
import sys
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql

from cli.stack import Reporter, Service
from core.platform.config import REPO_ROOT, Settings
from core.platform.probes import http_problem

RULES = REPO_ROOT / "deploy" / "prometheus" / "rules.yml"
MONITOR_ROLE = "stride_monitor"


def scrape_targets(settings: Settings) -> dict[str, str]:
    """Scrape job name -> loopback address of its metrics endpoint."""
    host = settings.metrics_host
    return {
        "prometheus": f"127.0.0.1:{settings.prometheus_port}",
        "stride-api": f"{host}:{settings.api_metrics_port}",
        "stride-streams": f"{host}:{settings.streams_metrics_port}",
        "stride-exporter": f"{host}:{settings.exporter_port}",
        "postgres": f"{host}:{settings.postgres_exporter_port}",
        "stride-writer": f"{host}:{settings.writer_metrics_port}",
        "stride-sweeper": f"{host}:{settings.sweeper_metrics_port}",
        # TODO(chain indexer): its endpoint once it serves one.
    }


def prometheus_config(settings: Settings) -> dict[str, Any]:
    """The Prometheus configuration of the local stack (JSON is valid YAML)."""
    interval = f"{settings.scrape_interval_s}s"
    alertmanager = urlsplit(settings.alertmanager_api)
    return {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            "external_labels": {"stack": settings.env},
        },
        "rule_files": [str(RULES)],
        "alerting": {
            "alertmanagers": [
                {
                    "scheme": alertmanager.scheme or "http",
                    "path_prefix": alertmanager.path or "/",
                    "static_configs": [{"targets": [alertmanager.netloc]}],
                }
            ]
        },
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in scrape_targets(settings).items()
        ],
    }


def prometheus_dir(settings: Settings):
    return settings.state_dir / "prometheus"


def _prepare_prometheus(settings: Settings, report: Reporter) -> None:
    home = prometheus_dir(settings)
    (home / "data").mkdir(parents=True, exist_ok=True)
    config = home / "prometheus.yml"
    config.write_text(json.dumps(prometheus_config(settings), indent=2) + "\n")
    report(f"prometheus: configuration written to {config}")


def _prometheus_command(settings: Settings) -> list[str]:
    home = prometheus_dir(settings)
    return [
        shutil.which("prometheus") or "prometheus",
        f"--config.file={home / 'prometheus.yml'}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--storage.tsdb.retention.time={settings.prometheus_retention}",
        f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
        "--web.enable-lifecycle",  # POST /-/reload after editing the rules
        "--log.format=json",
    ]


PROMETHEUS = Service(
    name="prometheus",
    description="Prometheus (Debian), scraping every process on loopback, platform alert rules",
    command=_prometheus_command,
    probe=lambda s: http_problem(f"http://127.0.0.1:{s.prometheus_port}/-/ready"),
    url=lambda s: s.prometheus_url,
    port=lambda s: s.prometheus_port,
    prepare=_prepare_prometheus,
    missing_hint="Install Prometheus (Debian: apt-get install prometheus).",
)


def _monitor_password(settings: Settings) -> str:
    return settings.local_secret(f"{MONITOR_ROLE}_password")


def _prepare_postgres_exporter(settings: Settings, report: Reporter) -> None:
    """A login role with ``pg_monitor`` for the exporter (not the superuser; idempotent)."""
    password = _monitor_password(settings)
    with psycopg.connect(settings.superuser_dsn + " dbname=postgres", autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (MONITOR_ROLE,)
        ).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(MONITOR_ROLE), sql.Literal(password)
            )
        )
        conn.execute(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(MONITOR_ROLE)))
    report(f"postgres-exporter: role {MONITOR_ROLE} (pg_monitor) ready")


def postgres_exporter_dsn(settings: Settings) -> str:
    password = quote(_monitor_password(settings), safe="")
    return (
        f"postgresql://{MONITOR_ROLE}:{password}@{settings.pg_host}:{settings.pg_port}/stride"
        "?sslmode=disable"
    )


POSTGRES_EXPORTER = Service(
    name="postgres-exporter",
    description="prometheus-postgres-exporter (Debian) for the local cluster",
    command=lambda s: [
        shutil.which("prometheus-postgres-exporter") or "prometheus-postgres-exporter",
        f"--web.listen-address={s.metrics_host}:{s.postgres_exporter_port}",
        "--log.format=json",
    ],
    probe=lambda s: http_problem(f"http://{s.metrics_host}:{s.postgres_exporter_port}/metrics"),
    url=lambda s: f"http://{s.metrics_host}:{s.postgres_exporter_port}/metrics",
    port=lambda s: s.postgres_exporter_port,
    depends_on=("postgres",),
    prepare=_prepare_postgres_exporter,
    env=lambda s: {"DATA_SOURCE_NAME": postgres_exporter_dsn(s)},
    missing_hint="Install it (Debian: apt-get install prometheus-postgres-exporter).",
)

EXPORTER = Service(
    name="exporter",
    description="platform exporter: Kafka consumer lag, dead letters, pending rewards, disk",
    command=lambda _s: [sys.executable, "-m", "cli.exporter"],
    probe=lambda s: http_problem(f"http://{s.metrics_host}:{s.exporter_port}/metrics"),
    url=lambda s: f"http://{s.metrics_host}:{s.exporter_port}/metrics",
    port=lambda s: s.exporter_port,
    depends_on=("postgres", "kafka"),
    env=lambda s: {"STRIDE_STATE_DIR": str(s.state_dir)},
)

MONITORING_SERVICES = [POSTGRES_EXPORTER, EXPORTER, PROMETHEUS]


# ---- `stride status`: lag and errors, not only up/down --------------------------------------


def scrape(url: str, timeout: float = 2.0) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of a Prometheus text endpoint: (name, sorted labels) -> value."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(url, timeout=timeout)
    response.raise_for_status()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def kafka_details(settings: Settings) -> dict[str, Any]:
    """Consumer lag per group (sum over its partitions, and the partitions behind)."""
    from core.platform.consumer_lag import read_lag

    groups: dict[str, dict[str, Any]] = {}
    for row in read_lag(settings):
        group = groups.setdefault(row.group, {"lag": 0, "partitions_behind": {}})
        group["lag"] += row.lag
        if row.lag:
            group["partitions_behind"][f"{row.topic}:{row.partition}"] = row.lag
    return {"consumer_lag": groups}


def api_details(settings: Settings) -> dict[str, Any]:
    """Requests and 5xx answers since the API started (its metrics endpoint)."""
    samples = scrape(f"http://{settings.metrics_host}:{settings.api_metrics_port}/metrics")
    total = errors = 0.0
    for (name, labels), value in samples.items():
        if name == "stride_http_requests_total":
            total += value
            if dict(labels)["status"].startswith("5"):
                errors += value
    return {"requests": int(total), "5xx": int(errors)}


def worker_details(settings: Settings) -> dict[str, Any]:
    """Records in each dead-letter topic (durable: counted on the broker)."""
    from core.platform.consumer_lag import dead_letter_topics, read_topic_counts

    return {"dead_letters": read_topic_counts(settings, dead_letter_topics())}


def sweeper_details(settings: Settings) -> dict[str, Any]:
    """Rows due for each sweep now (a backlog that stays up: the sweeper is behind)."""
    from cli.sweeper import due_now
    from core.platform.db import engine_for

    return {"due": due_now(engine_for(settings.db_url))}


DETAILS = {
    "kafka": kafka_details,
    "api": api_details,
    "worker": worker_details,
    "sweeper": sweeper_details,
}


def service_details(settings: Settings, name: str) -> dict[str, Any] | None:
    """What ``stride status`` shows beside a ready service's state; an error is a value."""
    read = DETAILS.get(name)
    if read is None:
        return None
    try:
        return read(settings)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def details_text(details: dict[str, Any] | None) -> str:
    """One cell of the status table."""
    if not details:
        return ""
    if "error" in details:
        return f"[yellow]{details['error']}[/]"
    if "consumer_lag" in details:
        groups = details["consumer_lag"]
        return "lag: " + (
            ", ".join(f"{g} {v['lag']}" for g, v in sorted(groups.items())) or "no groups"
        )
    if "5xx" in details:
        style = "red" if details["5xx"] else "green"
        return f"[{style}]5xx: {details['5xx']}[/] of {details['requests']} requests"
    if "due" in details:
        due = dict(details["due"])
        refunding = due.pop("refunding", 0)
        return "due: " + ", ".join(f"{k} {v}" for k, v in due.items()) + f"; refunding {refunding}"
    counts = details.get("dead_letters", {})
    return "dead letters: " + ", ".join(f"{t} {n}" for t, n in sorted(counts.items()))
