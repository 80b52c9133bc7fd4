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
  note "installing $(grep -c '^[A-Za-z0-9].*==' requirements.lock) locked Python packages (requirements.lock, hash-checked; a few minutes on a fresh machine, seconds when present)"
  # pip older than 24 mishandles extras of hashed requirements (gql[requests]).
  pip_quiet install -q "pip>=25"
  pip_quiet install -q --require-hashes -r requirements.lock
  pip_quiet install -q --no-deps --no-build-isolation -e .
  install_native
  note "$(.venv/bin/python --version), stride CLI at .venv/bin/stride"
}

# The compiled Apple Health tokenizer (native/stride_native: Rust with PyO3, built by the
# locked maturin) into .venv; rebuilt only when its sources change (their hash is kept in
# .venv). Without cargo the Python tokenizer is used (STRIDE_WEARABLES_NATIVE=auto), except
# in CI, which tests both.
NATIVE_SRC=native/stride_native
install_native() {
  local stamp=.venv/.stride_native.sha256 sum started=$SECONDS
  sum=$(cat "$NATIVE_SRC/Cargo.toml" "$NATIVE_SRC/Cargo.lock" "$NATIVE_SRC/pyproject.toml" \
    "$NATIVE_SRC"/src/*.rs | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ] && .venv/bin/python -c "import stride_native" 2>/dev/null; then
    note "native Apple Health tokenizer up to date (stride_native; sources unchanged)"
    return
  fi
  # rustup's default home, when a non-login shell did not put it on PATH
  if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null; then
    [ -z "${CI:-}" ] || need "Rust (cargo) not found" "install Rust 1.74 or newer: CI tests the compiled tokenizer"
    note "cargo not found: the Apple Health parse uses its Python tokenizer (install Rust, re-run to build it)"
    return
  fi
  note "building the native Apple Health tokenizer (Rust, ~1-3 min the first time: cargo fetches and compiles its crates; seconds when unchanged)"
  rm -f "$stamp"
  # maturin's build hook runs the maturin command: .venv/bin goes first on PATH
  PATH="$PWD/.venv/bin:$PATH" PYO3_PYTHON="$PWD/.venv/bin/python" \
    pip_quiet install -q --no-deps --no-build-isolation "./$NATIVE_SRC"
  .venv/bin/python -c "import stride_native" || need "stride_native was built but does not import" "see the pip output above"
  echo "$sum" >"$stamp"
  note "stride_native $(.venv/bin/python -c 'import stride_native; print(stride_native.__version__)') installed in $((SECONDS - started)) s"
}

install_contract_toolchain() {
  note "npm ci --prefix contracts (solc-js, OpenZeppelin, anvil, solhint from package-lock.json)"
  npm ci --prefix contracts --no-audit --no-fund --loglevel=error >/dev/null
}

install_engines() {
  note "Maven: Apache Kafka and the Delta Lake / S3 jars for Spark (engines/*/pom.xml -> .engines/)"
  .venv/bin/stride engines fetch
}

# ---- infrastructure and delivery checks (scripts/test.sh) -----------------------------------
ACTIONLINT_MODULE=github.com/rhysd/actionlint/cmd/actionlint
ACTIONLINT_VERSION=1.7.12
TOOLS=infra/.venv-tools

install_infra_tools() {
  local py; py=$(command -v python3.11 || command -v python3)
  if [ ! -x "$TOOLS/bin/python" ]; then note "creating $TOOLS with $py"; "$py" -m venv "$TOOLS"; fi
  note "checkov, hadolint into $TOOLS (infra/requirements-tools.lock, hash-checked)"
  PYTHONWARNINGS=ignore "$TOOLS/bin/python" -m pip install -q "pip>=25" 2>&1 \
    | { grep -v "^WARNING: Location '.*' is ignored" || true; }
  PYTHONWARNINGS=ignore "$TOOLS/bin/python" -m pip install -q --require-hashes \
    -r infra/requirements-tools.lock 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }
  note "npm ci --prefix infra (the cdk CLI, from infra/package-lock.json)"
  npm ci --prefix infra --no-audit --no-fund --loglevel=error >/dev/null
  if [ "$("$TOOLS/bin/actionlint" -version 2>/dev/null | head -1)" != "v$ACTIONLINT_VERSION" ]; then
    command -v go >/dev/null \
      || need "Go not found" "install Go 1.22 or newer (Debian: golang): actionlint is built from the Go module proxy"
    note "actionlint $ACTIONLINT_VERSION (go install from the Go module proxy)"
    GOBIN="$PWD/$TOOLS/bin" GOFLAGS=-mod=mod go install "$ACTIONLINT_MODULE@v$ACTIONLINT_VERSION"
  fi
}

# cdk synth (both stages, offline: no account, no lookups), cfn-lint and checkov on the
# templates, actionlint on the workflows, hadolint on the Dockerfile; each step timed.
infra_checks() {
  local started=$SECONDS t
  export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1 CDK_DISABLE_CLI_TELEMETRY=true
  t=$SECONDS
  (cd infra && STRIDE_PYTHON="${STRIDE_PYTHON:-$PWD/../.venv/bin/python}" \
    node_modules/.bin/cdk synth --quiet --no-notices --no-version-reporting >/dev/null)
  echo "cdk synth: ok ($((SECONDS - t)) s)"
  t=$SECONDS
  (cd infra && "${STRIDE_VENV:-$PWD/../.venv}/bin/cfn-lint")  # infra/.cfnlintrc.yaml
  echo "cfn-lint: ok ($((SECONDS - t)) s)"
  t=$SECONDS
  "$TOOLS/bin/checkov" -d infra/cdk.out --framework cloudformation --skip-download --quiet \
    --compact --baseline infra/.checkov.baseline
  echo "checkov: ok, accepted findings in infra/.checkov.baseline ($((SECONDS - t)) s)"
  t=$SECONDS
  "$TOOLS/bin/actionlint" .github/workflows/*.yml
  echo "actionlint: ok ($((SECONDS - t)) s)"
  "$TOOLS/bin/hadolint" Dockerfile
  echo "hadolint: ok"
  echo "infrastructure checks: all passed in $((SECONDS - started)) s"
}
