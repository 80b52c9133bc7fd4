"""Chain writer: reward command statuses widened (awaiting_wallet, needs_authorization,
queued), ``chain_txs``, ``chain_senders``, ``reward_executions``, ``burn_authorizations``.

``reward_commands.status`` is a VARCHAR (non-native enum): widening it from 16 to 24
characters is a metadata-only change in PostgreSQL, no rewrite, no long lock. The rest are
new tables; a downgrade drops them and puts commands in the new statuses back to
``pending`` (the old code knew no other waiting status) before narrowing the column.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UINT256 = sa.Numeric(78, 0)
STATUSES = (
    "pending",
    "awaiting_wallet",
    "needs_authorization",
    "queued",
    "submitted",
    "confirmed",
    "failed",
)


def _now(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.alter_column(
        "reward_commands",
        "status",
        existing_type=sa.String(length=16),
        type_=sa.Enum(*STATUSES, name="reward_status", native_enum=False, length=24),
        existing_nullable=False,
        existing_server_default=sa.text("'pending'"),
    )
    op.create_table(
        "chain_txs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("mint_batch", "burn", name="chain_tx_kind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "signed",
                "submitted",
                "mined",
                "confirmed",
                "failed",
                "dropped",
                name="chain_tx_status",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("to_address", sa.String(length=42), nullable=False),
        sa.Column("gas_limit", sa.BigInteger(), nullable=False),
        sa.Column("max_fee_per_gas", UINT256, nullable=False),
        sa.Column("max_priority_fee_per_gas", UINT256, nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False, comment="the latest broadcast"),
        sa.Column(
            "tx_hashes",
            postgresql.ARRAY(sa.String(length=66)),
            nullable=False,
            comment="every hash broadcast for this nonce, replaced ones first",
        ),
        sa.Column(
            "raw_tx", sa.LargeBinary(), nullable=False, comment="the latest signed transaction"
        ),
        sa.Column("command_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("bumps", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column(
            "broadcast_block",
            sa.BigInteger(),
            nullable=True,
            comment="the head when last broadcast (fee bumps count blocks from it)",
        ),
        sa.Column("mined_block", sa.BigInteger(), nullable=True),
        sa.Column("mined_block_hash", sa.String(length=66), nullable=True),
        sa.Column("mined_tx_hash", sa.String(length=66), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("fee_paid_wei", UINT256, nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_txs")),
    )
    op.create_index("ix_chain_txs_chain_status", "chain_txs", ["chain_id", "status"])
    op.create_index(
        "uq_chain_txs_live_nonce",
        "chain_txs",
        ["chain_id", "sender", "nonce"],
        unique=True,
        postgresql_where=sa.text("status <> 'dropped'"),
    )
    op.create_table(
        "chain_senders",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("next_nonce", sa.BigInteger(), nullable=False),
        sa.Column(
            "chain_latest_nonce",
            sa.BigInteger(),
            nullable=True,
            comment="eth_getTransactionCount(latest) at the last reconciliation",
        ),
        sa.Column("chain_pending_nonce", sa.BigInteger(), nullable=True),
        sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_repair", sa.Text(), nullable=True),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("chain_id", "sender", name=op.f("pk_chain_senders")),
    )
    op.create_table(
        "reward_executions",
        sa.Column("command_id", sa.Uuid(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("recipient", sa.String(length=42), nullable=True, comment="the wallet minted to"),
        sa.Column("amount_wei", UINT256, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True, comment="why the command is in its status"),
        sa.Column("chain_tx_id", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "outcome_published_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when rewards.outcomes.v1 acknowledged the outcome",
        ),
        _now("updated_at"),
        sa.ForeignKeyConstraint(
            ["command_id"],
            ["reward_commands.command_id"],
            name=op.f("fk_reward_executions_command_id_reward_commands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["chain_tx_id"],
            ["chain_txs.id"],
            name=op.f("fk_reward_executions_chain_tx_id_chain_txs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("command_id", name=op.f("pk_reward_executions")),
    )
    op.create_index(op.f("ix_reward_executions_chain_tx_id"), "reward_executions", ["chain_tx_id"])
    op.create_table(
        "burn_authorizations",
        sa.Column("command_id", sa.Uuid(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("value_wei", UINT256, nullable=False),
        sa.Column("permit_nonce", UINT256, nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("v", sa.SmallInteger(), nullable=False),
        sa.Column("r", sa.String(length=66), nullable=False),
        sa.Column("s", sa.String(length=66), nullable=False),
        _now("created_at"),
        sa.ForeignKeyConstraint(
            ["command_id"],
            ["reward_commands.command_id"],
            name=op.f("fk_burn_authorizations_command_id_reward_commands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("command_id", name=op.f("pk_burn_authorizations")),
    )


def downgrade() -> None:
    op.drop_table("burn_authorizations")
    op.drop_index(op.f("ix_reward_executions_chain_tx_id"), table_name="reward_executions")
    op.drop_table("reward_executions")
    op.drop_table("chain_senders")
    op.drop_index("uq_chain_txs_live_nonce", table_name="chain_txs")
    op.drop_index("ix_chain_txs_chain_status", table_name="chain_txs")
    op.drop_table("chain_txs")
    op.execute(
        "UPDATE reward_commands SET status = 'pending' "
        "WHERE status IN ('awaiting_wallet', 'needs_authorization', 'queued')"
    )
    op.alter_column(
        "reward_commands",
        "status",
        existing_type=sa.String(length=24),
        type_=sa.Enum(
            "pending",
            "submitted",
            "confirmed",
            "failed",
            name="reward_status",
            native_enum=False,
            length=16,
        ),
        existing_nullable=False,
        existing_server_default=sa.text("'pending'"),
    )
