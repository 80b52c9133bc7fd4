"""Alembic driven from code: one place builds the config the CLI, the stack and tests use."""

from __future__ import annotations

from typing import cast

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy import text

from core.platform.config import REPO_ROOT, Settings
from core.platform.db import engine_for

# Tables the read-only query page must never show (password hashes, session token hashes;
# sign-in attempts hold client IP addresses, which are personal data).
READONLY_HIDDEN_TABLES = ("admin_users", "admin_sessions", "admin_login_attempts")
# Columns the read-only role must not read in tables it otherwise sees (credential hashes;
# webhook URLs, which carry their owners' secret tokens in their path or query).
READONLY_HIDDEN_COLUMNS = {
    "games": ("api_key_hash",),
    "app_users": ("token_hash",),
    "metric_subscriptions": ("webhook_url",),
}
# Tables whose rows are about other tables: the read-only role reads only the rows about
# tables it may read (row-level security; the owner the application connects as is exempt).
READONLY_ROWS_ABOUT_TABLES = {"admin_audit_log": "table_name"}


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
        raw = cast(psycopg.Connection, conn.connection.dbapi_connection)
        ident = sql.Identifier(role)
        with raw.cursor() as cur:
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident))
            cur.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(ident))
            for table in READONLY_HIDDEN_TABLES:
                cur.execute("SELECT to_regclass(%s)", (f"public.{table}",))
                (exists,) = cur.fetchone() or (None,)
                if exists is not None:
                    cur.execute(
                        sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), ident)
                    )
            for table, column in READONLY_ROWS_ABOUT_TABLES.items():
                cur.execute("SELECT to_regclass(%s)", (f"public.{table}",))
                (exists,) = cur.fetchone() or (None,)
                if exists is None:
                    continue
                name = sql.Identifier(table)
                policy = sql.Identifier(f"{table}_readonly_rows")
                cur.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(name))
                cur.execute(sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(policy, name))
                cur.execute(
                    sql.SQL(
                        "CREATE POLICY {} ON {} FOR SELECT TO {} USING ({} <> ALL ({}::text[]))"
                    ).format(
                        policy,
                        name,
                        ident,
                        sql.Identifier(column),
                        sql.Literal(list(READONLY_HIDDEN_TABLES)),
                    )
                )
            for table, hidden in READONLY_HIDDEN_COLUMNS.items():
                cur.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
                    (table,),
                )
                visible = [row[0] for row in cur.fetchall() if row[0] not in hidden]
                if not visible:
                    continue
                cur.execute(
                    sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), ident)
                )
                cur.execute(
                    sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
                        sql.SQL(", ").join(map(sql.Identifier, visible)),
                        sql.Identifier(table),
                        ident,
                    )
                )
