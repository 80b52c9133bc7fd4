"""Session fixtures: a private local stack (PostgreSQL, Apache Kafka, API behind nginx) on free
loopback ports.

Services are started with the same supervisor and service declarations as ``stride up``,
in a temporary state folder, and stopped at the end of the session.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from cli.services import SERVICES, isolated_stack_env
from cli.stack import Stack
from core.platform.config import Settings, get_settings
from core.platform.db import engine_for, reset_engines
from core.platform.migrate import sync_readonly_grants, upgrade_to_head

# The lakehouse tests' wearable fixtures (Fitbit, Apple Health exports) date from 2024: the
# partitions start there in the tests (set before dagster_project is imported: read at load).
os.environ.setdefault("STRIDE_LAKE_FIRST_DAY", "2024-01-01")


@pytest.fixture(scope="session")
def stack_settings() -> Iterator[Settings]:
    """Settings pointing at a throw-away state folder and free ports (env vars set)."""
    state, env = isolated_stack_env("stride-test-")
    # Small front-door timeouts, so that its slow-client tests wait little.
    env |= {"STRIDE_API_CLIENT_HEADER_TIMEOUT_S": "2", "STRIDE_API_CLIENT_BODY_TIMEOUT_S": "2"}
    # `stride up anvil` records its deployment there, and the API reads it from there.
    env["STRIDE_CONTRACT_DEPLOYMENTS_DIR"] = str(state / "deployments")
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
def alerting(stack: Stack, db_engine: Engine) -> Settings:
    """Alertmanager (Debian's, generated configuration) and the local webhook receiver."""
    stack.up(["webhooks", "alertmanager"], report=lambda _m: None)
    return stack.settings


@pytest.fixture(scope="session")
def live_api(stack: Stack, db_engine: Engine, kafka: Settings) -> str:
    """The API as `stride up` runs it: uvicorn behind its nginx front door; returns the
    public base URL (nginx's)."""
    stack.up(["proxy"], report=lambda _m: None)
    return stack.settings.api_url


SPARK_WARM_UP = """
import sys
from datetime import date
from spark_jobs.session import read_day, replace_day, spark_session, stop_sessions
spark = spark_session(sys.argv[1])
path = sys.argv[2] + "/spark/warm-up"
rows = spark.range(1000).selectExpr("id", "id % 7 AS k", "DATE'2000-01-01' AS date")
for _ in range(2):
    replace_day(rows, path, date(2000, 1, 1), ["date"])
day = read_day(spark, path, date(2000, 1, 1))
day.groupBy("k").count().join(day, "k").count()
stop_sessions()
"""


@pytest.fixture(scope="session")
def spark(stack: Stack) -> Iterator[Settings]:
    """The Spark Connect server (Spark 4.1 + Delta 4.3 on the JVM), as `stride up spark`
    runs it: started once per session (~7 s to ready), shared by every lakehouse test.

    Its S3A points at a moto S3 server (`python -m moto.server`, started here on a free
    loopback port) through the STRIDE_LAKE_S3_* settings, so the same server also serves
    the s3a:// lake of tests/integration/lake/test_lakehouse_s3.py; the default lake stays the
    local folder."""
    import subprocess
    import sys
    import time

    import httpx

    from cli.stack import free_port
    from spark_jobs.session import stop_sessions

    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
            break
        except httpx.HTTPError:
            if moto.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto S3 server did not start") from None
            time.sleep(0.05)  # readiness polling, bounded by the deadline
    env = {
        "STRIDE_LAKE_S3_ENDPOINT": endpoint,
        "STRIDE_LAKE_S3_ACCESS_KEY_ID": "stride-test",
        "STRIDE_LAKE_S3_SECRET_ACCESS_KEY": "stride-test-secret",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    settings = get_settings()
    warm_up = None
    try:
        # The stack's settings were read before these variables: start spark with the new
        # ones (same state folder, so the session's `stack.down()` stops it too).
        Stack(settings, SERVICES).up(["spark"], report=lambda _m: None)
        # The first Delta jobs of a fresh JVM cost ~15 s of class loading and JIT. A client
        # of its own pays them in the background while the other fixtures start services.
        warm_up = subprocess.Popen(
            [sys.executable, "-c", SPARK_WARM_UP, settings.spark_url, str(settings.state_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        yield settings
    finally:
        if warm_up is not None and warm_up.poll() is None:
            warm_up.kill()
            warm_up.wait()
        stop_sessions()  # before the server stops, or the client's exit hook retries forever
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        moto.terminate()
        moto.wait(timeout=10)


@pytest.fixture(scope="session")
def lake_worker(stack: Stack, db_engine: Engine, kafka: Settings) -> Settings:
    """The Faust worker (scoring agent and the bronze lake sink), as `stride up` runs it."""
    stack.up(["worker"], report=lambda _m: None)
    return stack.settings


# `scripts/test.sh` runs `pytest -n 2 --dist loadfile --no-loadscope-reorder`: one file's
# tests on one worker (its module fixtures, an anvil chain or a browser, start once), each
# worker with a private stack of its own (its session fixtures: nothing else is shared).
# The Spark tests all live here and share one worker, so one Spark Connect server starts.
SPARK_TESTS = "tests/integration/lake/"
# The order work is handed out in: the Spark group (the longest), the whole flows, the
# services, then the unit files, so the run ends on short files that balance the workers.
_FIRST = (SPARK_TESTS, "tests/e2e/", "tests/integration/", "tests/contracts/", "tests/")


def _rank(nodeid: str) -> int:
    return next(i for i, prefix in enumerate(_FIRST) if nodeid.startswith(prefix))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The order above (stable: a file's tests keep theirs). Without xdist it only changes
    which files run first."""
    strays = [
        i.nodeid
        for i in items
        if "spark" in getattr(i, "fixturenames", ()) and not i.nodeid.startswith(SPARK_TESTS)
    ]
    if strays:  # each such file would start a Spark server of its own on its worker
        raise pytest.UsageError(f"tests using the spark fixture live in {SPARK_TESTS}: {strays}")
    items.sort(key=lambda item: _rank(item.nodeid))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` with the Spark tests' files as one unit (xdist's own grouping
    marks, ``--dist loadgroup``, do not take with pytest 9: it sets a node id attribute that
    pytest no longer reads)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesWithSparkTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return SPARK_TESTS if nodeid.startswith(SPARK_TESTS) else super()._split_scope(nodeid)

    return FilesWithSparkTogether(config, log)
