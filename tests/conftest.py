"""Session fixtures: a private local stack (PostgreSQL, Apache Kafka, API) on free loopback ports.

Services are started with the same supervisor and service declarations as ``stride up``,
in a temporary state folder, and stopped at the end of the session.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from cli.services import SERVICES, isolated_stack_env
from cli.stack import Stack
from core.config import Settings, get_settings
from core.db import engine_for, reset_engines
from core.migrate import sync_readonly_grants, upgrade_to_head


@pytest.fixture(scope="session")
def stack_settings() -> Iterator[Settings]:
    """Settings pointing at a throw-away state folder and free ports (env vars set)."""
    state, env = isolated_stack_env("stride-test-")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    reset_engines()
    try:
        yield get_settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        reset_engines()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def stack(stack_settings: Settings) -> Iterator[Stack]:
    """The supervisor; every service started through it is stopped at session end."""
    s = Stack(stack_settings, SERVICES)
    try:
        yield s
    finally:
        s.down(report=lambda _m: None)


@pytest.fixture(scope="session")
def postgres(stack: Stack) -> Settings:
    stack.up(["postgres"], report=lambda _m: None)
    return stack.settings


@pytest.fixture(scope="session")
def kafka(stack: Stack) -> Settings:
    stack.up(["kafka"], report=lambda _m: None)
    return stack.settings


@pytest.fixture(scope="session")
def db_engine(postgres: Settings) -> Engine:
    """The application database, migrated to head, with read-only grants in place."""
    upgrade_to_head(postgres)
    sync_readonly_grants(postgres)
    return engine_for(postgres.db_url)


@pytest.fixture(scope="session")
def live_api(stack: Stack, db_engine: Engine, kafka: Settings) -> str:
    """The API served by uvicorn as `stride up` runs it; returns its base URL."""
    stack.up(["api"], report=lambda _m: None)
    return stack.settings.api_url


@pytest.fixture(scope="session")
def spark(stack: Stack) -> Iterator[Settings]:
    """The Spark Connect server (Spark 4.1 + Delta 4.3 on the JVM), as `stride up spark`
    runs it: started once per session (~7 s to ready), shared by every lakehouse test."""
    from spark_jobs.session import stop_sessions

    stack.up(["spark"], report=lambda _m: None)
    yield stack.settings
    stop_sessions()  # before the server stops, or the client's exit hook retries forever


@pytest.fixture(scope="session")
def lake_worker(stack: Stack, db_engine: Engine, kafka: Settings) -> Settings:
    """The Faust worker (scoring agent and the bronze lake sink), as `stride up` runs it."""
    stack.up(["worker"], report=lambda _m: None)
    return stack.settings
