#!/usr/bin/env bash
# One command on a fresh machine: install everything, then start the local stack.
source "$(dirname "$0")/lib.sh"

step "Checking prerequisites (Python 3.11, PostgreSQL 15 binaries, npm)"
check_prerequisites
step "Installing Python dependencies into .venv"
install_python
step "Installing the contract toolchain (Node packages)"
install_contract_toolchain
step "Starting the local stack on 127.0.0.1 (PostgreSQL, Kafka, API, worker, Spark, Dagster, anvil)"
.venv/bin/stride up
printf '\nNext: .venv/bin/stride status | .venv/bin/stride down | .venv/bin/stride --help\n'
