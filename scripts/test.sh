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
step "Installing the infrastructure linters (checkov, hadolint, actionlint) and the cdk CLI"
install_infra_tools
step "Infrastructure checks, in the background while the tests run (cdk synth, cfn-lint, checkov, actionlint, hadolint)"
INFRA_LOG=$(mktemp "${TMPDIR:-/tmp}/stride-infra-checks.XXXXXX")
infra_checks >"$INFRA_LOG" 2>&1 &
INFRA_PID=$!
INFRA_STEP=$STEP
# Leave no checks running when a later step fails (set -e exits the script).
trap 'kill "$INFRA_PID" 2>/dev/null || true' EXIT
note "log: $INFRA_LOG (printed below when they are done)"
step "Lint and format check (ruff)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
step "Type check (mypy: core/, api/, stride_client/, infra/, chain_writer/, chain_indexer/, cli/, contracts/deploy.py)"
.venv/bin/mypy
step "Tests: unit, integration (real PostgreSQL, Kafka, Spark + Delta, anvil), end to end"
tests=0
# Two workers (STRIDE_TEST_WORKERS), one file at a time each, every Spark test on one of them
# (tests/conftest.py); each worker starts its own private stack.
workers=${STRIDE_TEST_WORKERS:-2}
note "pytest on $workers workers (-n $workers --dist loadfile)"
# The OpenAPI fuzz runs none of its operations under xdist: on its own, afterwards.
FUZZ=tests/integration/platform/test_openapi_fuzz.py
.venv/bin/python -m pytest -n "$workers" --dist loadfile --no-loadscope-reorder --ignore="$FUZZ" "$@" || tests=$?
if [ "$#" -eq 0 ]; then  # with arguments, pytest runs what they select, as given
  note "the OpenAPI fuzz ($FUZZ), without xdist"
  .venv/bin/python -m pytest "$FUZZ" || tests=$?
fi
step "Infrastructure checks (started in the background at step $INFRA_STEP)"
infra=0
wait "$INFRA_PID" || infra=$?
sed 's/^/    /' "$INFRA_LOG"
rm -f "$INFRA_LOG"
if [ "$infra" -ne 0 ]; then
  printf '\033[1;31merror:\033[0m the infrastructure checks failed (exit %s): see above\n' "$infra" >&2
fi
if [ "$tests" -ne 0 ]; then
  printf '\033[1;31merror:\033[0m pytest failed (exit %s)\n' "$tests" >&2
fi
[ "$tests" -eq 0 ] && [ "$infra" -eq 0 ]
