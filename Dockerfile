# syntax=docker/dockerfile:1
# The Stride API image (also runs `stride db upgrade` as the compose `migrate` service).
#   docker build -t stride-api .        (docker-compose.yml builds it for you)
# Dependencies come only from requirements.lock, hash-checked; the stride package is
# installed without dependencies on top, so nothing unpinned can slip in.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: a virtualenv with the locked dependencies and the stride package -------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# A compiler only in this stage, for any locked package that ships no wheel for the platform.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY . .
RUN pip install --no-deps .

# ---- runtime: the virtualenv, a non-root user, nothing else ------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 stride \
    && useradd --system --uid 10001 --gid stride --create-home --home-dir /home/stride \
       --shell /usr/sbin/nologin stride
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STRIDE_ENV=prod \
    STRIDE_STATE_DIR=/home/stride/state
USER stride:stride
WORKDIR /home/stride
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"]
# 0.0.0.0 is right inside the container: compose publishes the port on the host's 127.0.0.1.
CMD ["sh", "-c", "exec uvicorn api.main:app --host 0.0.0.0 --port 8000 --workers \"${STRIDE_API_WORKERS:-1}\""]
