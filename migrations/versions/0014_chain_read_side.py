"""The chain read side: the indexer's state (cursors, block window, published logs of the
window, outbox) and the projections (logs by id, ERC-20 balances, NFT balances, projection
heads), contract facts, operators' named collections and NFT metadata.

Only new tables, so no running process is affected while it is applied; a downgrade drops
them (the indexer then starts over from STRIDE_INDEXER_START_BLOCK after an upgrade).

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-01 14:26:07.920743
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chain_blocks",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("parent_hash", sa.String(length=66), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "number", name=op.f("pk_chain_blocks")),
    )
    op.create_table(
        "chain_cursors",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("indexed_block", sa.BigInteger(), nullable=True),
        sa.Column("head", sa.BigInteger(), nullable=True),
        sa.Column("head_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("chain_id", name=op.f("pk_chain_cursors")),
    )
    op.create_table(
        "chain_logs",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("standard", sa.String(length=8), nullable=True),
        sa.Column("moves", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("args", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("canonical", sa.Boolean(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("chain_id", "block_hash", "log_index", name=op.f("pk_chain_logs")),
    )
    op.create_index(
        "ix_chain_logs_contract_event",
        "chain_logs",
        ["chain_id", "contract", "event"],
        unique=False,
    )
    op.create_table(
        "chain_outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_outbox")),
    )
    op.create_table(
        "chain_projection_heads",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("chain_id", name=op.f("pk_chain_projection_heads")),
    )
    op.create_table(
        "chain_window_logs",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "chain_id", "block_hash", "log_index", name=op.f("pk_chain_window_logs")
        ),
    )
    op.create_index(
        "ix_chain_window_logs_block",
        "chain_window_logs",
        ["chain_id", "block_number"],
        unique=False,
    )
    op.create_table(
        "contract_facts",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("standard", sa.String(length=8), nullable=True),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("symbol", sa.String(length=64), nullable=True),
        sa.Column("decimals", sa.SmallInteger(), nullable=True),
        sa.Column(
            "fetched_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("chain_id", "contract", name=op.f("pk_contract_facts")),
    )
    op.create_table(
        "nft_balances",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("token_id", sa.Numeric(precision=78, scale=0), nullable=False),
        sa.Column("holder", sa.String(length=42), nullable=False),
        sa.Column("standard", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.Numeric(precision=78, scale=0), nullable=False),
        sa.PrimaryKeyConstraint(
            "chain_id", "contract", "token_id", "holder", name=op.f("pk_nft_balances")
        ),
    )
    op.create_index(
        "ix_nft_balances_holder",
        "nft_balances",
        ["chain_id", "holder", "contract", "token_id"],
        unique=False,
    )
    op.create_table(
        "nft_collections",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "name", "contract", name=op.f("pk_nft_collections")),
    )
    op.create_table(
        "nft_metadata",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("token_id", sa.Numeric(precision=78, scale=0), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("token_uri", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("image", sa.Text(), nullable=True),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("animation_url", sa.Text(), nullable=True),
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("content_type", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("chain_id", "contract", "token_id", name=op.f("pk_nft_metadata")),
    )
    op.create_table(
        "token_balances",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("holder", sa.String(length=42), nullable=False),
        sa.Column("amount", sa.Numeric(precision=78, scale=0), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "contract", "holder", name=op.f("pk_token_balances")),
    )
    op.create_index(
        "ix_token_balances_holder", "token_balances", ["chain_id", "holder"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_token_balances_holder", table_name="token_balances")
    op.drop_table("token_balances")
    op.drop_table("nft_metadata")
    op.drop_table("nft_collections")
    op.drop_index("ix_nft_balances_holder", table_name="nft_balances")
    op.drop_table("nft_balances")
    op.drop_table("contract_facts")
    op.drop_index("ix_chain_window_logs_block", table_name="chain_window_logs")
    op.drop_table("chain_window_logs")
    op.drop_table("chain_projection_heads")
    op.drop_table("chain_outbox")
    op.drop_index("ix_chain_logs_contract_event", table_name="chain_logs")
    op.drop_table("chain_logs")
    op.drop_table("chain_cursors")
    op.drop_table("chain_blocks")
