"""The chain read side: the indexer's state (cursors, block window, published logs of the
window, outbox) and the projections (logs by id, ERC-20 balances, NFT balances, projection
heads), contract facts, operators' named collections and NFT metadata.

Only new tables, so no running process is affected while it is applied; a downgrade drops
them (the indexer then starts over from STRIDE_INDEXER_START_BLOCK after an upgrade).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 14:26:07.920743
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The Stride contracts' own projections are views over the canonical logs: a reorg's
# retraction flips ``canonical`` and every view follows, so they equal a rebuild by
# construction. (Materialize them when their reads need it.)
VIEWS = {
    "vault_token_stakes": """
        SELECT chain_id, contract AS vault, args->>'account' AS account,
          sum(CASE event WHEN 'Staked' THEN (args->>'amount')::numeric
                         ELSE -(args->>'amount')::numeric END) AS staked,
          max(block_number) AS last_block
        FROM chain_logs
        WHERE canonical AND event IN ('Staked', 'Withdrawn', 'EmergencyWithdrawn')
        GROUP BY chain_id, contract, args->>'account'
    """,
    "vault_rewards_paid": """
        SELECT chain_id, contract AS vault, args->>'account' AS account,
          sum((args->>'reward')::numeric) AS paid, max(block_number) AS last_block
        FROM chain_logs WHERE canonical AND event = 'RewardPaid'
        GROUP BY chain_id, contract, args->>'account'
    """,
    "vault_nft_stakes": """
        SELECT s.chain_id, s.contract AS vault, s.args->>'account' AS account,
          s.args->>'collection' AS collection, (s.args->>'tokenId')::numeric AS token_id,
          (s.args->>'weight')::numeric AS weight, s.block_number AS staked_block
        FROM chain_logs s
        WHERE s.canonical AND s.event = 'NftStaked' AND NOT EXISTS (
          SELECT 1 FROM chain_logs w
          WHERE w.canonical AND w.chain_id = s.chain_id AND w.contract = s.contract
            AND w.event IN ('NftWithdrawn', 'NftRescued')
            AND w.args->>'collection' = s.args->>'collection'
            AND w.args->>'tokenId' = s.args->>'tokenId'
            AND (w.block_number, w.log_index) > (s.block_number, s.log_index))
    """,
    "marketplace_listings": """
        SELECT l.chain_id, l.contract AS marketplace, (l.args->>'listingId')::numeric AS listing_id,
          l.args->>'seller' AS seller, l.args->>'collection' AS collection,
          (l.args->>'tokenId')::numeric AS token_id, l.args->>'currency' AS currency,
          (l.args->>'price')::numeric AS price, (l.args->>'expiry')::bigint AS expiry,
          l.block_number AS listed_block,
          CASE WHEN sale.block_number IS NOT NULL THEN 'sold'
               WHEN cancel.block_number IS NOT NULL THEN 'cancelled'
               ELSE 'active' END AS status,
          sale.args->>'buyer' AS buyer, sale.block_number AS sold_block
        FROM chain_logs l
        LEFT JOIN LATERAL (SELECT block_number, args FROM chain_logs x
          WHERE x.canonical AND x.chain_id = l.chain_id AND x.contract = l.contract
            AND x.event = 'Sale' AND x.args->>'listingId' = l.args->>'listingId'
          LIMIT 1) sale ON true
        LEFT JOIN LATERAL (SELECT block_number FROM chain_logs x
          WHERE x.canonical AND x.chain_id = l.chain_id AND x.contract = l.contract
            AND x.event = 'ListingCancelled' AND x.args->>'listingId' = l.args->>'listingId'
          LIMIT 1) cancel ON true
        WHERE l.canonical AND l.event = 'Listed'
    """,
    "marketplace_sales": """
        SELECT s.chain_id, s.contract AS marketplace, (s.args->>'listingId')::numeric AS listing_id,
          s.args->>'buyer' AS buyer, l.args->>'seller' AS seller,
          l.args->>'collection' AS collection, (l.args->>'tokenId')::numeric AS token_id,
          (s.args->>'price')::numeric AS price, (s.args->>'fee')::numeric AS fee,
          (s.args->>'royalty')::numeric AS royalty, s.block_number, s.block_timestamp, s.tx_hash
        FROM chain_logs s LEFT JOIN chain_logs l
          ON l.canonical AND l.chain_id = s.chain_id AND l.contract = s.contract
          AND l.event = 'Listed' AND l.args->>'listingId' = s.args->>'listingId'
        WHERE s.canonical AND s.event = 'Sale'
    """,
    "bridge_transfers": """
        SELECT chain_id, contract AS bridge,
          CASE event WHEN 'BridgeOut' THEN 'out' ELSE 'in' END AS direction,
          (args->>'nonce')::numeric AS nonce,
          CASE event WHEN 'BridgeOut' THEN chain_id ELSE (args->>'srcChainId')::bigint END
            AS src_chain_id,
          CASE event WHEN 'BridgeOut' THEN (args->>'dstChainId')::bigint ELSE chain_id END
            AS dst_chain_id,
          args->>'sender' AS sender, args->>'recipient' AS recipient,
          (args->>'amount')::numeric AS amount, block_number, block_timestamp, tx_hash
        FROM chain_logs WHERE canonical AND event IN ('BridgeOut', 'BridgeIn')
    """,
}


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
    for name, query in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {query}")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW {name}")
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
