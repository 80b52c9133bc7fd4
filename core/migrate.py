"""Alembic driven from code: one place builds the config the CLI, the stack and tests use."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy import text

from core.config import REPO_ROOT, Settings
from core.db import engine_for

# Tables the read-only query page must never show (password hashes).
READONLY_HIDDEN_TABLES = ("admin_users",)


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = settings.db_url
    return config


def upgrade_to_head(settings: Settings) -> None:
    command.upgrade(alembic_config(settings), "head")


def sync_readonly_grants(settings: Settings) -> None:
    """Let the read-only role SELECT every table except the hidden ones (idempotent)."""
    role = settings.readonly_role
    engine = engine_for(settings.db_url)
    with engine.begin() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
            return
        raw = conn.connection.dbapi_connection
        ident = sql.Identifier(role)
        with raw.cursor() as cur:
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident))
            cur.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(ident))
            for table in READONLY_HIDDEN_TABLES:
                cur.execute("SELECT to_regclass(%s)", (f"public.{table}",))
                if cur.fetchone()[0] is not None:
                    cur.execute(
                        sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), ident)
                    )
