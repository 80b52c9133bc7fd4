"""Wallet sign-in and player links: wallet_nonces, user_wallets, player_link_codes,
player_links, link_audit_log.

Only new tables, so no running process is affected while it is applied; a downgrade drops
them (every wallet and player link is forgotten).

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"],
        ["app_users.user_id"],
        name=op.f(f"fk_{table}_user_id_app_users"),
        ondelete="CASCADE",
    )


def _game_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["game_id"],
        ["games.game_id"],
        name=op.f(f"fk_{table}_game_id_games"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "wallet_nonces",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        _user_fk("wallet_nonces"),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_wallet_nonces")),
    )
    op.create_index(op.f("ix_wallet_nonces_user_id"), "wallet_nonces", ["user_id"])

    op.create_table(
        "user_wallets",
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("is_primary", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        _user_fk("user_wallets"),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_user_wallets")),
    )
    op.create_index(op.f("ix_user_wallets_user_id"), "user_wallets", ["user_id"])
    op.create_index(
        "ux_user_wallets_primary",
        "user_wallets",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("is_primary"),
    )

    op.create_table(
        "player_link_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        _user_fk("player_link_codes"),
        _game_fk("player_link_codes"),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_player_link_codes")),
    )
    op.create_index(op.f("ix_player_link_codes_user_id"), "player_link_codes", ["user_id"])

    op.create_table(
        "player_links",
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("player_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        _user_fk("player_links"),
        _game_fk("player_links"),
        sa.PrimaryKeyConstraint("game_id", "player_id", name=op.f("pk_player_links")),
    )
    op.create_index(op.f("ix_player_links_user_id"), "player_links", ["user_id"])

    op.create_table(
        "link_audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=256), nullable=False),
        sa.Column(
            "detail",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_audit_log")),
    )
    op.create_index(op.f("ix_link_audit_log_at"), "link_audit_log", ["at"])
    op.create_index(op.f("ix_link_audit_log_user_id"), "link_audit_log", ["user_id"])
    op.create_index(op.f("ix_link_audit_log_subject"), "link_audit_log", ["subject"])


def downgrade() -> None:
    for table in (
        "link_audit_log",
        "player_links",
        "player_link_codes",
        "user_wallets",
        "wallet_nonces",
    ):
        op.drop_table(table)
