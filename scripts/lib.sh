# Shared steps of scripts/setup.sh and scripts/test.sh (sourced, not run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

STEP=0
step() { STEP=$((STEP + 1)); printf '\n\033[1m==> [%s] %s\033[0m\n' "$STEP" "$*"; }
note() { printf '    %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*  (install it by hand, then re-run)" >&2; return 1; fi
}

# Debian packages, installed only when the command they provide is missing.
ensure_debian_packages() {  # usage: ensure_debian_packages cmd:package ...
  local missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  if [ "${#missing[@]}" -eq 0 ]; then note "system packages present"; return; fi
  note "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

check_prerequisites() {
  command -v python3.11 >/dev/null || command -v python3 >/dev/null \
    || { echo "Python 3.11 is required" >&2; exit 1; }
  command -v npm >/dev/null || {
    echo "npm not found: install Node.js 20 with npm (Debian: nodejs npm)" >&2; exit 1; }
  for cmd in initdb postgres; do
    command -v "$cmd" >/dev/null || {
      echo "$cmd not found: install the PostgreSQL 15 server binaries (Debian: postgresql-15)" \
        "and put them on PATH" >&2; exit 1; }
  done
}

# Run pip, hiding this machine's warnings about absent local package mirrors.
pip_quiet() {
  PYTHONWARNINGS=ignore .venv/bin/python -m pip "$@" 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }
  return "${PIPESTATUS[0]}"
}

install_python() {
  local py; py=$(command -v python3.11 || command -v python3)
  if [ ! -x .venv/bin/python ]; then note "creating .venv with $py"; "$py" -m venv .venv; fi
  note "installing locked Python dependencies (requirements.lock)"
  # pip older than 24 mishandles extras of hashed requirements (gql[requests]).
  pip_quiet install -q "pip>=25"
  pip_quiet install -q --require-hashes -r requirements.lock
  pip_quiet install -q --no-deps --no-build-isolation -e .
  note "$(.venv/bin/python --version), stride CLI at .venv/bin/stride"
}

install_contract_toolchain() {
  note "npm ci --prefix contracts (solc-js, OpenZeppelin, anvil, solhint from package-lock.json)"
  npm ci --prefix contracts --no-audit --no-fund --loglevel=error >/dev/null
}
