"""Tables of the chain writer.

``reward_executions`` (per reward command: the chain, the resolved recipient, why it is in
its status, the transaction that carries it), ``chain_txs`` (every transaction the writer
signed: sender, nonce, fees, every hash it was broadcast under including the replaced ones,
the command ids it carries, the mined block, the decoded failure), ``chain_senders`` (per
chain and sender: the next local nonce, gap-free) and ``burn_authorizations`` (the holder's
EIP-2612 permit for a burn command). The headline status stays on ``reward_commands``.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from core.platform.db import Base

UINT256 = Numeric(78, 0)


class TxKind(enum.StrEnum):
    mint_batch = "mint_batch"
    burn = "burn"


class TxStatus(enum.StrEnum):
    """``signed`` (recorded, maybe not broadcast yet) → ``submitted`` (the node has it) →
    ``mined`` (in a block, not yet confirmed) → ``confirmed`` | ``failed`` (reverted);
    ``dropped`` when its nonce was taken by another transaction (its commands are sent
    again in a new one)."""

    signed = "signed"
    submitted = "submitted"
    mined = "mined"
    confirmed = "confirmed"
    failed = "failed"
    dropped = "dropped"


ACTIVE_TX_STATUSES = (TxStatus.signed, TxStatus.submitted, TxStatus.mined)


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class ChainTx(Base):
    """One transaction of the writer's sender: what it carries and where it is."""

    __tablename__ = "chain_txs"
    __table_args__ = (
        Index("ix_chain_txs_chain_status", "chain_id", "status"),
        # One live transaction per nonce; a dropped one's nonce belongs to another tx.
        Index(
            "uq_chain_txs_live_nonce",
            "chain_id",
            "sender",
            "nonce",
            unique=True,
            postgresql_where=text("status <> 'dropped'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[TxKind] = mapped_column(
        Enum(TxKind, name="chain_tx_kind", native_enum=False, length=16)
    )
    status: Mapped[TxStatus] = mapped_column(
        Enum(TxStatus, name="chain_tx_status", native_enum=False, length=16)
    )
    to_address: Mapped[str] = mapped_column(String(42))
    gas_limit: Mapped[int] = mapped_column(BigInteger)
    max_fee_per_gas: Mapped[Decimal] = mapped_column(UINT256)
    max_priority_fee_per_gas: Mapped[Decimal] = mapped_column(UINT256)
    tx_hash: Mapped[str] = mapped_column(String(66), comment="the latest broadcast")
    tx_hashes: Mapped[list[str]] = mapped_column(
        ARRAY(String(66)), comment="every hash broadcast for this nonce, replaced ones first"
    )
    raw_tx: Mapped[bytes] = mapped_column(LargeBinary, comment="the latest signed transaction")
    command_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid))
    bumps: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    broadcast_block: Mapped[int | None] = mapped_column(
        BigInteger, comment="the head when last broadcast (fee bumps count blocks from it)"
    )
    mined_block: Mapped[int | None] = mapped_column(BigInteger)
    mined_block_hash: Mapped[str | None] = mapped_column(String(66))
    mined_tx_hash: Mapped[str | None] = mapped_column(String(66))
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    fee_paid_wei: Mapped[Decimal | None] = mapped_column(UINT256)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()

    def __str__(self) -> str:
        return f"{self.kind} nonce {self.nonce} on chain {self.chain_id} ({self.status})"


class ChainSender(Base):
    """Per chain and sender: the next nonce the writer will sign with (gap-free)."""

    __tablename__ = "chain_senders"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    sender: Mapped[str] = mapped_column(String(42), primary_key=True)
    next_nonce: Mapped[int] = mapped_column(BigInteger)
    chain_latest_nonce: Mapped[int | None] = mapped_column(
        BigInteger, comment="eth_getTransactionCount(latest) at the last reconciliation"
    )
    chain_pending_nonce: Mapped[int | None] = mapped_column(BigInteger)
    reconciled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_repair: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = _now()

    def __str__(self) -> str:
        return f"{self.sender} on chain {self.chain_id} (next nonce {self.next_nonce})"


class RewardExecution(Base):
    """How the chain writer is executing one reward command, and why it is where it is."""

    __tablename__ = "reward_executions"

    command_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("reward_commands.command_id", ondelete="CASCADE"), primary_key=True
    )
    chain_id: Mapped[int] = mapped_column(BigInteger)
    recipient: Mapped[str | None] = mapped_column(String(42), comment="the wallet minted to")
    amount_wei: Mapped[Decimal] = mapped_column(UINT256)
    reason: Mapped[str | None] = mapped_column(Text, comment="why the command is in its status")
    chain_tx_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("chain_txs.id", ondelete="SET NULL"), index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    outcome_published_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="when rewards.outcomes.v1 acknowledged the outcome"
    )
    updated_at: Mapped[datetime] = _now()

    def __str__(self) -> str:
        return f"command {self.command_id} on chain {self.chain_id}"


class BurnAuthorization(Base):
    """A holder's EIP-2612 permit (spender: the distributor) for one burn command."""

    __tablename__ = "burn_authorizations"

    command_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("reward_commands.command_id", ondelete="CASCADE"), primary_key=True
    )
    chain_id: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str] = mapped_column(String(42))
    value_wei: Mapped[Decimal] = mapped_column(UINT256)
    permit_nonce: Mapped[Decimal] = mapped_column(UINT256)
    deadline: Mapped[int] = mapped_column(BigInteger)
    v: Mapped[int] = mapped_column(SmallInteger)
    r: Mapped[str] = mapped_column(String(66))
    s: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = _now()

    def __str__(self) -> str:
        return f"permit of {self.owner} for command {self.command_id}"
