# syntax=docker/dockerfile:1
# The Stride image: the API (default command), and with another command every other process
# of the platform (workers, indexer, writer, Dagster, the migrate task: docker-compose.yml,
# infra/stacks/compute.py).
#   docker build -t stride-api .        (docker-compose.yml builds it for you)
# Dependencies come only from requirements-runtime.lock (the app's pins without the test
# tools, the linters or the CDK), hash-checked; the stride package is installed without
# dependencies on top, so nothing unpinned can slip in.

# The base is pinned by digest (the tag moves; a digest does not). The digest was taken from
# the public record and could not be checked from this offline workspace: refresh it with
#   docker buildx imagetools inspect python:3.11-slim-bookworm
# and replace both halves together (docs/deploy.md, The image).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b
# The Rust toolchain that builds the compiled Apple Health tokenizer (native/stride_native);
# only the build stage uses it. Pin it by digest the same way when refreshing the base.
ARG RUST_IMAGE=rust:1.95-slim-bookworm

# ---- rust: the toolchain, copied into the build stage (nothing of it reaches the image) ----
FROM ${RUST_IMAGE} AS rust

# ---- build: a virtualenv with the locked dependencies and the stride package -------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# A compiler only in this stage, for any locked package that ships no wheel for the platform.
# Not version-pinned: the digest above fixes the Debian release, and a pin would break on
# every Debian point release (build-essential is not in the final image).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements-runtime.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements-runtime.lock
# Rust for native/stride_native, built by the locked maturin (removed once it is built).
COPY --from=rust /usr/local/cargo /usr/local/cargo
COPY --from=rust /usr/local/rustup /usr/local/rustup
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/opt/venv/bin:/usr/local/cargo/bin:$PATH
COPY native/stride_native/build-requirements.txt ./native/stride_native/
RUN pip install --no-cache-dir --require-hashes -r native/stride_native/build-requirements.txt
COPY . .
RUN pip install --no-cache-dir --no-deps . \
    && PYO3_PYTHON=/opt/venv/bin/python pip install --no-cache-dir --no-deps --no-build-isolation \
       ./native/stride_native \
    && pip uninstall -y maturin \
    && python -c "import stride_native"

# ---- runtime: the virtualenv, a non-root user, nothing else ------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 stride \
    && useradd --system --uid 10001 --gid stride --create-home --home-dir /home/stride \
       --shell /usr/sbin/nologin stride
COPY --from=build /opt/venv /opt/venv
# Dagster's instance on ECS (EcsRunLauncher, PostgreSQL storage); unused by the local stack.
COPY --chown=root:root infra/dagster/dagster.yaml /home/stride/dagster/dagster.yaml
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DAGSTER_HOME=/home/stride/dagster \
    STRIDE_ENV=prod \
    STRIDE_WEARABLES_NATIVE=on \
    STRIDE_STATE_DIR=/home/stride/state
USER 10001:10001
WORKDIR /home/stride
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"]
# 0.0.0.0 is right inside the container: compose publishes the port on the host's 127.0.0.1.
CMD ["sh", "-c", "exec uvicorn api.main:app --host 0.0.0.0 --port 8000 --workers \"${STRIDE_API_WORKERS:-1}\""]
