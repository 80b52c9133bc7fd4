#!/usr/bin/env bash
# One command on a fresh machine: install what the tests need, lint, run every test.
source "$(dirname "$0")/lib.sh"

step "Checking prerequisites (Python 3.11, Node 20, Java 17 + Maven, PostgreSQL 15)"
check_prerequisites
step "Installing test tools, the front door, monitoring, alerting and backups (Debian: chromium, chromium-driver, kcat, nginx, prometheus, prometheus-postgres-exporter, prometheus-alertmanager, pgbackrest)"
ensure_debian_packages chromium:chromium chromedriver:chromium-driver kcat:kcat nginx:nginx \
  prometheus:prometheus promtool:prometheus \
  prometheus-postgres-exporter:prometheus-postgres-exporter pgbackrest:pgbackrest \
  prometheus-alertmanager:prometheus-alertmanager
step "Installing Python dependencies into .venv"
install_python
step "Installing the contract toolchain (Node packages)"
install_contract_toolchain
step "Fetching the JVM engines' jars (Maven Central)"
install_engines
step "Lint and format check (ruff)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
step "Type check (mypy: core/, api/)"
.venv/bin/mypy
step "Tests: unit, integration (real PostgreSQL, Kafka, Spark + Delta, anvil), end to end"
.venv/bin/python -m pytest "$@"
