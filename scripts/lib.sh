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

# Debian packages, installed only when the command they provide is missing. Commands are
# looked for in /usr/sbin and /sbin too (nginx is there), which a user's PATH may lack.
ensure_debian_packages() {  # usage: ensure_debian_packages cmd:package ...
  local missing=()
  for pair in "$@"; do
    PATH="$PATH:/usr/sbin:/sbin" command -v "${pair%%:*}" >/dev/null 2>&1 \
      || missing+=("${pair#*:}")
  done
  if [ "${#missing[@]}" -eq 0 ]; then note "system packages present"; return; fi
  note "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

need() {  # usage: need "what is missing" "what to do"
  printf '\033[1;31merror:\033[0m %s\n       %s\n' "$1" "$2" >&2; exit 1
}

# The PostgreSQL 15 server binaries: on PATH, where pg_config says, or Debian's folder.
pg_bindir() {
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  local dir
  for dir in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/15/bin; do
    if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then echo "$dir"; return; fi
  done
  return 1
}

check_prerequisites() {
  command -v python3.11 >/dev/null \
    || need "Python 3.11 not found" "install Python 3.11 (python3.11 on PATH, e.g. with pyenv)"
  command -v node >/dev/null && command -v npm >/dev/null \
    || need "Node.js / npm not found" "install Node.js 20 with npm (Debian: nodejs npm)"
  local node_major; node_major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$node_major" -ge 20 ] || need "Node.js $node_major is too old" "install Node.js 20 or newer"
  command -v java >/dev/null \
    || need "Java not found" "install Java 17 (Debian: openjdk-17-jdk-headless) for Kafka and Spark"
  local java_major
  java_major=$(java -XshowSettings:properties -version 2>&1 \
    | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')
  [ "${java_major:-0}" -ge 17 ] \
    || need "Java ${java_major:-?} is too old" "install Java 17 or newer (or set JAVA_HOME to one)"
  command -v mvn >/dev/null \
    || need "Maven not found" "install Apache Maven (Debian: maven): it fetches the Kafka and Delta jars"
  local pgbin; pgbin=$(pg_bindir) || need "PostgreSQL 15 server binaries not found" \
    "install them (Debian: apt-get install postgresql-15); looked on PATH, in pg_config --bindir and /usr/lib/postgresql/15/bin"
  "$pgbin/postgres" --version | grep -q " 15\." \
    || need "$("$pgbin/postgres" --version) found, PostgreSQL 15 needed" "install postgresql-15"
  note "Python 3.11, Node $(node -v), Java $java_major, $(mvn -v 2>/dev/null | head -1 | sed 's/\x1b\[[0-9;]*m//g'), PostgreSQL 15 in $pgbin"
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

install_engines() {
  note "Maven: Apache Kafka and the Delta Lake / S3 jars for Spark (engines/*/pom.xml -> .engines/)"
  .venv/bin/stride engines fetch
}
