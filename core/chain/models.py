"""Tables of the chain read side.

The indexer's own state: ``chain_cursors`` (per chain: indexed block, head, last error),
``chain_blocks`` (number, hash, parent hash of the unfinalized window),
``chain_window_logs`` (what was published for those blocks, to retract it after a reorg)
and ``chain_outbox`` (records written in the cursor's transaction, published in order and
deleted once the broker acknowledged them). The projections: ``chain_logs`` (every log
seen, by ``(chain_id, block_hash, log_index)``, with whether it is canonical),
``token_balances`` (ERC-20), ``nft_balances`` (ERC-721 owners and ERC-1155 balances),
``chain_projection_heads``. Contract facts, operators' named collections, NFT metadata.
The app's write flows: ``actions`` (what a user's wallet was asked to sign, and what became
of its transaction).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Identity,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.platform.db import Base

UINT256 = Numeric(78, 0)


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class ChainCursor(Base):
    """Per chain: where the indexer is, what the node's head is, the last error."""

    __tablename__ = "chain_cursors"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    indexed_block: Mapped[int | None] = mapped_column(BigInteger)
    head: Mapped[int | None] = mapped_column(BigInteger)
    head_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = _now()


class ChainBlock(Base):
    """A block of the unfinalized window: its hash chain detects reorgs."""

    __tablename__ = "chain_blocks"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(66))
    parent_hash: Mapped[str] = mapped_column(String(66))
    timestamp: Mapped[int] = mapped_column(BigInteger)


class ChainWindowLog(Base):
    """A log published for a block of the window: retracted if that block is orphaned."""

    __tablename__ = "chain_window_logs"
    __table_args__ = (Index("ix_chain_window_logs_block", "chain_id", "block_number"),)

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[str] = mapped_column(Text)


class ChainOutbox(Base):
    """A record to publish on chain.logs.v1, written with the cursor it belongs to."""

    __tablename__ = "chain_outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)


class ChainLogRow(Base):
    """Every log the projections have seen, canonical or retracted (the idempotency key)."""

    __tablename__ = "chain_logs"
    __table_args__ = (Index("ix_chain_logs_contract_event", "chain_id", "contract", "event"),)

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_timestamp: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    contract: Mapped[str] = mapped_column(String(42))
    event: Mapped[str] = mapped_column(String(64))
    standard: Mapped[str | None] = mapped_column(String(8))
    moves: Mapped[Any] = mapped_column(JSONB)
    args: Mapped[Any] = mapped_column(JSONB)
    canonical: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = _now()


class TokenBalance(Base):
    """An ERC-20 balance of a holder (rows at zero are deleted)."""

    __tablename__ = "token_balances"
    __table_args__ = (Index("ix_token_balances_holder", "chain_id", "holder"),)

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    contract: Mapped[str] = mapped_column(String(42), primary_key=True)
    holder: Mapped[str] = mapped_column(String(42), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(UINT256)


class NftBalance(Base):
    """How many of an NFT a holder has: 1 for the owner of an ERC-721 token, any amount
    of an ERC-1155 id (rows at zero are deleted)."""

    __tablename__ = "nft_balances"
    __table_args__ = (
        Index("ix_nft_balances_holder", "chain_id", "holder", "contract", "token_id"),
    )

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    contract: Mapped[str] = mapped_column(String(42), primary_key=True)
    token_id: Mapped[Decimal] = mapped_column(UINT256, primary_key=True)
    holder: Mapped[str] = mapped_column(String(42), primary_key=True)
    standard: Mapped[str] = mapped_column(String(8))
    amount: Mapped[Decimal] = mapped_column(UINT256)


class ChainProjectionHead(Base):
    """Per chain: the highest block whose logs the projections applied."""

    __tablename__ = "chain_projection_heads"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = _now()


class ContractFacts(Base):
    """What a contract is (ERC-165 / probing), fetched once: name, symbol, decimals."""

    __tablename__ = "contract_facts"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    contract: Mapped[str] = mapped_column(String(42), primary_key=True)
    standard: Mapped[str | None] = mapped_column(String(8))
    name: Mapped[str | None] = mapped_column(String(256))
    symbol: Mapped[str | None] = mapped_column(String(64))
    decimals: Mapped[int | None] = mapped_column(SmallInteger)
    fetched_at: Mapped[datetime] = _now()


class NftCollection(Base):
    """An operators' named collection: its contracts on a chain ("Genopets" -> 0x...)."""

    __tablename__ = "nft_collections"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    contract: Mapped[str] = mapped_column(String(42), primary_key=True)


class NftMetadata(Base):
    """An NFT's resolved metadata, or why it could not be resolved and when to try again."""

    __tablename__ = "nft_metadata"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    contract: Mapped[str] = mapped_column(String(42), primary_key=True)
    token_id: Mapped[Decimal] = mapped_column(UINT256, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    token_uri: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(Text)
    animation_url: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[Any] = mapped_column(JSONB, nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


ACTION_STATUSES = ("prepared", "submitted", "relaying", "confirmed", "failed")


class ChainAction(Base):
    """One write flow of an app user: what their wallet was asked to sign (simulated first),
    then its transaction: ``prepared`` → ``submitted`` → ``confirmed`` or ``failed`` (with
    the decoded reason); a bridge transfer is ``relaying`` between its two legs."""

    __tablename__ = "actions"
    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", name="uq_actions_chain_tx_hash"),
        CheckConstraint(
            "status IN ('prepared', 'submitted', 'relaying', 'confirmed', 'failed')",
            name="ck_actions_status",
        ),
        Index("ix_actions_user_created", "user_id", "created_at"),
        Index(
            "ix_actions_open",
            "chain_id",
            "status",
            postgresql_where=text("status IN ('submitted', 'relaying')"),
        ),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    wallet: Mapped[str] = mapped_column(String(42))
    params: Mapped[Any] = mapped_column(JSONB, nullable=False)
    prepared: Mapped[Any] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(String(16), server_default="prepared")
    reason: Mapped[str | None] = mapped_column(Text)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    destination: Mapped[Any] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = _now()
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = _now()
