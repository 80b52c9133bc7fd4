"""The read-only role behind the admin SQL page: reads tables, never credentials, never writes."""

import psycopg
import pytest
from sqlalchemy.engine import Engine

from core.platform.config import Settings


@pytest.fixture
def readonly(postgres: Settings, db_engine: Engine):
    dsn = postgres.readonly_db_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def test_reads_application_tables(readonly) -> None:
    assert readonly.execute("SELECT count(*) FROM score_log").fetchone()[0] >= 0
    assert readonly.execute("SELECT count(*) FROM games").fetchone()[0] >= 0


@pytest.mark.parametrize(
    "query",
    [
        "SELECT password_hash FROM admin_users",
        "SELECT count(*) FROM admin_users",
        "SELECT token_hash FROM admin_sessions",
        "SELECT api_key_hash FROM games",
        "SELECT token_hash FROM app_users",
        "SELECT webhook_url FROM metric_subscriptions",
    ],
)
def test_credentials_are_not_readable(readonly, query: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        readonly.execute(query)


def test_other_columns_of_credential_tables_are(readonly) -> None:
    readonly.execute("SELECT game_id FROM games LIMIT 1").fetchall()


def test_writes_are_refused(readonly) -> None:
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        readonly.execute("DELETE FROM score_log")


def test_statements_time_out(readonly, postgres: Settings) -> None:
    timeout = readonly.execute("SHOW statement_timeout").fetchone()[0]
    assert timeout == f"{postgres.query_statement_timeout_ms // 1000}s"
