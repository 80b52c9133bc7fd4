"""The engine's liveness check (core/platform/db.py): a pooled connection is handed out with
no ``SELECT 1`` round trip while its socket is quiet; one whose backend is gone, or that sat
idle for ``IDLE_PING_S``, is pinged first and replaced when the ping fails. (A PostgreSQL
killed and started again: tests/integration/events/test_database_outage.py.)"""

from __future__ import annotations

import select
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.platform import db
from core.platform.config import Settings
from tests.streaming_helpers import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(postgres: Settings, db_engine: Engine) -> Iterator[Engine]:
    """A private engine of one pooled connection, built as every engine_for is."""
    engine = db.engine_for.__wrapped__(postgres.db_url, pool_size=1)  # type: ignore[attr-defined]
    yield engine
    engine.dispose()


@pytest.fixture
def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ping the check sends, recorded (and sent)."""
    sent: list[Any] = []
    ping = engine.dialect.do_ping

    def recorded(dbapi_connection: Any) -> bool:
        sent.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", recorded)
    return sent


def backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_quiet_pooled_connection_is_handed_out_without_a_ping(
    engine: Engine, pings: list[Any]
) -> None:
    first = backend_pid(engine)
    assert [backend_pid(engine) for _ in range(5)] == [first] * 5  # the same connection
    assert pings == []


def test_a_terminated_backend_is_replaced_before_a_request_sees_it(
    engine: Engine, pings: list[Any], db_engine: Engine
) -> None:
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        raw = conn.connection.dbapi_connection
    with db_engine.connect() as other:
        assert other.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar()
    # Ready when the backend's FATAL (and end of stream) reached the pooled socket.
    assert raw is not None
    wait_for("the terminated backend's goodbye", lambda: select.select([raw], [], [], 0)[0], 10)

    assert backend_pid(engine) != pid  # no error: the pool connected afresh
    assert pings == [raw]  # one ping, of the dead connection only
    backend_pid(engine)
    assert len(pings) == 1  # the new connection is quiet again


def test_a_connection_idle_past_the_threshold_is_pinged(
    engine: Engine, pings: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backend_pid(engine)
    monkeypatch.setattr(db, "IDLE_PING_S", 0.0)
    assert backend_pid(engine) == first  # alive: pinged and kept
    assert len(pings) == 1
