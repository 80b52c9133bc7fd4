"""Migrations: models and migrations agree, every revision goes up and down, and get_score
works at every revision (the expand/contract rename keeps old rows readable)."""

import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from psycopg import sql
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

import core.models  # noqa: F401 - registers every table
from api.auth import Caller, authenticated_caller
from api.main import create_app
from core.platform.config import Settings
from core.platform.db import Base, get_engine
from core.platform.migrate import alembic_config
from core.scores.formula import compute_score
from core.scores.log import read_score, score_log_columns

pytestmark = pytest.mark.slow


@pytest.fixture
def scratch(postgres: Settings) -> Iterator[tuple[Settings, Engine]]:
    """An empty database of its own, owned by the app role."""
    import psycopg

    name = f"migrations_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres.superuser_dsn + " dbname=postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER stride").format(sql.Identifier(name)))
        url = postgres.db_url.rsplit("/", 1)[0] + f"/{name}"
        settings = postgres.model_copy(update={"database_url": SecretStr(url)})
        engine = create_engine(url)
        try:
            yield settings, engine
        finally:
            engine.dispose()
            score_log_columns.forget()
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def revisions_oldest_first(settings: Settings) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config(settings))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_models_and_migrations_agree(scratch) -> None:
    settings, engine = scratch
    command.upgrade(alembic_config(settings), "head")
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == [], f"models differ from migrations; run `stride db revision`: {diff}"


def test_every_revision_upgrades_and_downgrades(scratch) -> None:
    settings, engine = scratch
    config = alembic_config(settings)
    revisions = revisions_oldest_first(settings)
    assert revisions[:5] == ["0001", "0002", "0003", "0004", "0005"]

    def current() -> str | None:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    for revision in revisions:
        command.upgrade(config, revision)
        assert current() == revision
    for expected in reversed([None, *revisions[:-1]]):
        command.downgrade(config, "-1")
        assert current() == expected
    with engine.connect() as conn:
        tables = conn.execute(
            text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        ).scalar_one()
    assert tables == 1  # only alembic_version is left
    command.upgrade(config, "head")
    assert current() == revisions[-1]


def exercise_get_score(client: TestClient, engine: Engine, value: float) -> int:
    """The get_score API contract, checked against the database it runs on."""
    response = client.post("/v1/get_score", json={"user_id": "migrating-player", "input": value})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["score"] == compute_score(value)
    stored = read_score(engine, body["log_id"])
    assert stored is not None
    assert (stored.user_id, stored.input, stored.score) == (
        "migrating-player",
        value,
        body["score"],
    )
    bad = client.post("/v1/get_score", json={"user_id": "migrating-player"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "input"
    return body["log_id"]


def test_get_score_works_at_every_revision(scratch) -> None:
    settings, engine = scratch
    config = alembic_config(settings)
    app = create_app()
    app.dependency_overrides[get_engine] = lambda: engine
    # The credential tables are younger than score_log: this test is about score_log's
    # schema at each revision, so the caller is a game server without a lookup.
    app.dependency_overrides[authenticated_caller] = lambda: Caller("migrations", None)
    written: dict[int, float] = {}
    with TestClient(app) as client:
        for step, revision in enumerate(revisions_oldest_first(settings)):
            command.upgrade(config, revision)
            # No cache reset: the writer must notice a dropped column by itself.
            value = 10.0 + step
            written[exercise_get_score(client, engine, value)] = value
            # Rows written at earlier revisions survive every migration with their input.
            for log_id, expected in written.items():
                stored = read_score(engine, log_id)
                assert stored is not None and stored.input == expected, (revision, log_id)
    with engine.connect() as conn:
        nulls = conn.execute(
            text("SELECT count(*) FROM score_log WHERE input_value IS NULL")
        ).scalar_one()
    assert nulls == 0


def test_rename_keeps_old_and_new_writers_in_sync(scratch) -> None:
    """During the expand step (0003) old code writes `input`, new code `input_value`."""
    settings, engine = scratch
    command.upgrade(alembic_config(settings), "0003")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO score_log (request_id, user_id, input, score)"
                " VALUES (gen_random_uuid(), 'old-code', 1.5, 15)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO score_log (request_id, user_id, input_value, score)"
                " VALUES (gen_random_uuid(), 'new-code', 2.5, 25)"
            )
        )
        rows = conn.execute(
            text("SELECT user_id, input, input_value FROM score_log ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows] == [("old-code", 1.5, 1.5), ("new-code", 2.5, 2.5)]
