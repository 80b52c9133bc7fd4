#!/usr/bin/env bash
# One command on a fresh machine: install everything, then start the local stack.
source "$(dirname "$0")/lib.sh"

step "Checking prerequisites (Python 3.11, Node 20, Java 17 + Maven, PostgreSQL 15)"
check_prerequisites
step "Installing the front door, monitoring, alerting and backups (Debian: nginx, prometheus, its postgres exporter, prometheus-alertmanager, pgbackrest; stride runs them, not the system services)"
ensure_debian_packages nginx:nginx prometheus:prometheus promtool:prometheus \
  prometheus-postgres-exporter:prometheus-postgres-exporter pgbackrest:pgbackrest \
  prometheus-alertmanager:prometheus-alertmanager
step "Installing Python dependencies into .venv"
install_python
step "Installing the contract toolchain (Node packages)"
install_contract_toolchain
step "Fetching the JVM engines' jars (Maven Central)"
install_engines
step "Starting the local stack on 127.0.0.1 (PostgreSQL, Kafka, API behind nginx, webhook receiver, Alertmanager, stream workers, metrics sampler, matcher, Spark, Dagster, anvil with the contracts, chain indexer, chain writer, exporters, Prometheus)"
.venv/bin/stride up
printf '\nNext: .venv/bin/stride status | .venv/bin/stride down | .venv/bin/stride --help\n'
