"""Tables of the economy: the catalog (items, unlockable content with battle-pass tiers,
packs), inventories (owner and unlocker), grants keyed by idempotency keys that never
expire, gifts with their escrow, the inventory ledger (provenance), achievements and
battle-pass progress. Diagram and rules in docs/content.md."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
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
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.platform.db import Base

PRICE = Numeric(38, 18)


class ContentKind(enum.StrEnum):
    unlockable = "unlockable"
    battle_pass = "battle_pass"  # noqa: S105 - a kind, not a password


class GrantSource(enum.StrEnum):
    purchase = "purchase"
    achievement = "achievement"
    battle_pass = "battle_pass"  # noqa: S105 - a kind, not a password


class PaymentState(enum.StrEnum):
    """A grant paid in the game token: held (``awaiting_payment``, stock reserved, nothing
    in the inventory) until its burn is confirmed on chain (``paid``: granted once) or fails
    or is not authorized in time (``payment_failed``: stock released). ``refund_due``: the
    burn was confirmed but the items could not be granted any more (e.g. sold out after a
    retried burn); the reason says why. The sweeper then issues the refund, a mint of what
    was paid keyed by the grant (``refunding``: ``refund_command_id`` set), and the writer's
    confirmation of that mint ends it (``refunded``). Null: no token payment (granted at
    once)."""

    awaiting_payment = "awaiting_payment"
    paid = "paid"
    payment_failed = "payment_failed"
    refund_due = "refund_due"
    refunding = "refunding"
    refunded = "refunded"


class GiftStatus(enum.StrEnum):
    offered = "offered"
    accepted = "accepted"
    declined = "declined"
    cancelled = "cancelled"
    expired = "expired"


class LedgerReason(enum.StrEnum):
    granted = "granted"
    gift_offered = "gift_offered"
    gift_received = "gift_received"
    gift_returned = "gift_returned"
    consumed = "consumed"


def _game_fk() -> Any:
    return ForeignKey("games.game_id", ondelete="CASCADE")


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class CatalogItem(Base):
    """Something a player can own: stackable (a quantity) or not (one at most)."""

    __tablename__ = "catalog_items"

    game_id: Mapped[str] = mapped_column(_game_fk(), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(500), server_default="")
    stackable: Mapped[bool] = mapped_column(Boolean)
    max_count: Mapped[int | None] = mapped_column(Integer, comment="per player; null: unlimited")
    consumable: Mapped[bool] = mapped_column(Boolean, server_default="false")
    giftable: Mapped[bool] = mapped_column(Boolean, server_default="true")
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    version: Mapped[int] = mapped_column(Integer, server_default="1", comment="the ETag")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()

    def __str__(self) -> str:
        return f"{self.name} ({self.game_id}/{self.item_id})"


class CatalogContent(Base):
    """Game content a player unlocks once: a level, a skin set, a battle-pass season."""

    __tablename__ = "catalog_content"

    game_id: Mapped[str] = mapped_column(_game_fk(), primary_key=True)
    content_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[ContentKind] = mapped_column(
        Enum(ContentKind, name="content_kind", native_enum=False, length=16)
    )
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(500), server_default="")
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    xp_rules: Mapped[dict[str, Any]] = mapped_column(
        JSONB, server_default="{}", comment="battle pass: XP per kind of game event"
    )
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    version: Mapped[int] = mapped_column(Integer, server_default="1", comment="the ETag")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()

    def __str__(self) -> str:
        return f"{self.name} ({self.game_id}/{self.content_id})"


class ContentTier(Base):
    """One tier of a battle-pass season: the XP that reaches it and what it grants."""

    __tablename__ = "content_tiers"
    __table_args__ = (
        ForeignKeyConstraint(
            ["game_id", "content_id"],
            ["catalog_content.game_id", "catalog_content.content_id"],
            name="fk_content_tiers_content",
            ondelete="CASCADE",
        ),
    )

    game_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tier: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    xp_required: Mapped[int] = mapped_column(BigInteger)
    rewards: Mapped[dict[str, Any]] = mapped_column(JSONB, comment="items and tokens")

    def __str__(self) -> str:
        return f"tier {self.tier} of {self.game_id}/{self.content_id}"


class CatalogPack(Base):
    """Items and/or content sold together at a price, within a window, maybe in limited stock."""

    __tablename__ = "catalog_packs"
    __table_args__ = (
        CheckConstraint("stock_total IS NULL OR stock_sold <= stock_total", name="stock"),
    )

    game_id: Mapped[str] = mapped_column(_game_fk(), primary_key=True)
    pack_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(500), server_default="")
    entries: Mapped[dict[str, Any]] = mapped_column(JSONB, comment="items with quantities, content")
    price_amount: Mapped[Decimal] = mapped_column(PRICE)
    price_currency: Mapped[str] = mapped_column(String(10))
    giftable: Mapped[bool] = mapped_column(Boolean, server_default="true")
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stock_total: Mapped[int | None] = mapped_column(Integer, comment="null: unlimited")
    stock_sold: Mapped[int] = mapped_column(Integer, server_default="0")
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    version: Mapped[int] = mapped_column(Integer, server_default="1", comment="the ETag")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()

    def __str__(self) -> str:
        return f"{self.name} ({self.game_id}/{self.pack_id})"


class InventoryItem(Base):
    """Units of an item an app user owns, one stack per unlocker (who paid or earned them)."""

    __tablename__ = "inventory_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity"),
        ForeignKeyConstraint(
            ["game_id", "item_id"],
            ["catalog_items.game_id", "catalog_items.item_id"],
            name="fk_inventory_items_item",
            ondelete="CASCADE",
        ),
    )

    game_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(
        ForeignKey("app_users.user_id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    unlocked_by: Mapped[str] = mapped_column(String(128), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()

    def __str__(self) -> str:
        return f"{self.quantity} x {self.item_id} of {self.owner_id}"


class UserContent(Base):
    """Content an app user has unlocked (once), and who unlocked it for them."""

    __tablename__ = "user_content"
    __table_args__ = (
        ForeignKeyConstraint(
            ["game_id", "content_id"],
            ["catalog_content.game_id", "catalog_content.content_id"],
            name="fk_user_content_content",
            ondelete="CASCADE",
        ),
    )

    game_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(
        ForeignKey("app_users.user_id", ondelete="CASCADE"), primary_key=True
    )
    content_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    unlocked_by: Mapped[str] = mapped_column(String(128))
    grant_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    unlocked_at: Mapped[datetime] = _created()

    def __str__(self) -> str:
        return f"{self.content_id} of {self.owner_id}"


class Grant(Base):
    """What one idempotency key granted, forever: a purchase, an achievement, a tier."""

    __tablename__ = "grants"
    __table_args__ = (
        UniqueConstraint(
            "game_id", "requested_by", "idempotency_key", name="uq_grants_idempotency_key"
        ),
        Index("ix_grants_owner", "game_id", "owner_id", "created_at"),
        Index(
            "ix_grants_reward_command",
            "reward_command_id",
            postgresql_where="reward_command_id IS NOT NULL",
        ),
        Index(
            "ix_grants_payment_due",
            "payment_due_at",
            postgresql_where="payment_state = 'awaiting_payment'",
        ),
        Index(
            "ix_grants_refund_due",
            "settled_at",
            postgresql_where="payment_state = 'refund_due'",
        ),
        Index(
            "ix_grants_refund_command",
            "refund_command_id",
            postgresql_where="refund_command_id IS NOT NULL",
        ),
    )

    grant_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    game_id: Mapped[str] = mapped_column(_game_fk())
    requested_by: Mapped[str] = mapped_column(
        String(128), comment="whose idempotency key: the buyer, or 'progress'"
    )
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64), comment="a reused key must match")
    source: Mapped[GrantSource] = mapped_column(
        Enum(GrantSource, name="grant_source", native_enum=False, length=16)
    )
    source_id: Mapped[str] = mapped_column(String(200), comment="pack, achievement or tier")
    owner_id: Mapped[str | None] = mapped_column(
        String(128), comment="app user; null: the player is not linked (unclaimed)"
    )
    player_id: Mapped[str | None] = mapped_column(String(128))
    unlocked_by: Mapped[str] = mapped_column(String(128))
    entries: Mapped[dict[str, Any]] = mapped_column(JSONB, comment="what was granted")
    price_amount: Mapped[Decimal | None] = mapped_column(PRICE)
    price_currency: Mapped[str | None] = mapped_column(String(10))
    reward_command_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, comment="the burn (price) or mint (token reward) command"
    )
    payment_state: Mapped[PaymentState | None] = mapped_column(
        Enum(PaymentState, name="grant_payment_state", native_enum=False, length=24),
        comment="null: not paid in the game token (granted at once)",
    )
    payment_reason: Mapped[str | None] = mapped_column(Text, comment="why it failed")
    payment_due_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="the burn must be authorized before this"
    )
    settled_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True),
        comment="when it became paid, payment_failed, refund_due or refunded",
    )
    refund_command_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, comment="the mint that refunds the price (refunding, refunded)"
    )
    created_at: Mapped[datetime] = _created()

    def __str__(self) -> str:
        return f"{self.source} {self.source_id} to {self.owner_id or self.player_id}"


class Gift(Base):
    """An item offered by one user to another: escrowed until accepted, declined,
    cancelled or expired."""

    __tablename__ = "gifts"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity"),
        UniqueConstraint(
            "game_id", "sender_id", "idempotency_key", name="uq_gifts_idempotency_key"
        ),
        Index("ix_gifts_recipient", "recipient_id", "status"),
        Index("ix_gifts_sender", "sender_id", "status"),
        Index("ix_gifts_open_expiry", "expires_at", postgresql_where="status = 'offered'"),
    )

    gift_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    game_id: Mapped[str] = mapped_column(_game_fk())
    sender_id: Mapped[str] = mapped_column(String(128))
    recipient_id: Mapped[str] = mapped_column(String(128))
    item_id: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    escrow: Mapped[list[Any]] = mapped_column(
        JSONB, comment="units held: [{unlocked_by, quantity}]"
    )
    message: Mapped[str] = mapped_column(String(280), server_default="")
    idempotency_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[GiftStatus] = mapped_column(
        Enum(GiftStatus, name="gift_status", native_enum=False, length=16)
    )
    offered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __str__(self) -> str:
        return f"{self.quantity} x {self.item_id} from {self.sender_id} to {self.recipient_id}"


class InventoryLedger(Base):
    """Every change of an inventory, append-only: the provenance of each unit."""

    __tablename__ = "inventory_ledger"
    __table_args__ = (
        Index("ix_inventory_ledger_owner", "game_id", "owner_id", "entry_id"),
        Index(
            "uq_inventory_ledger_operation",
            "game_id",
            "owner_id",
            "operation_key",
            unique=True,
            postgresql_where="operation_key IS NOT NULL",
        ),
    )

    entry_id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    game_id: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str] = mapped_column(String(128))
    item_id: Mapped[str | None] = mapped_column(String(64))
    content_id: Mapped[str | None] = mapped_column(String(64))
    delta: Mapped[int] = mapped_column(Integer)
    reason: Mapped[LedgerReason] = mapped_column(
        Enum(LedgerReason, name="ledger_reason", native_enum=False, length=16)
    )
    unlocked_by: Mapped[str] = mapped_column(String(128))
    grant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    gift_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    counterparty: Mapped[str | None] = mapped_column(String(128))
    operation_key: Mapped[str | None] = mapped_column(
        String(200), comment="idempotency key of a consumption"
    )
    at: Mapped[datetime] = _created()

    def __str__(self) -> str:
        return f"{self.reason} {self.delta:+d} {self.item_id or self.content_id} of {self.owner_id}"


class AchievementDefinition(Base):
    """An achievement of a game: a metric of the player's totals reaching a threshold."""

    __tablename__ = "achievements"

    game_id: Mapped[str] = mapped_column(_game_fk(), primary_key=True)
    achievement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(500), server_default="")
    metric: Mapped[str] = mapped_column(String(32), comment="wins, matches, level, ...")
    threshold: Mapped[int] = mapped_column(BigInteger)
    rewards: Mapped[dict[str, Any]] = mapped_column(JSONB, comment="items, xp, tokens")
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    version: Mapped[int] = mapped_column(Integer, server_default="1", comment="the ETag")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()

    def __str__(self) -> str:
        return f"{self.name} ({self.game_id}/{self.achievement_id})"


class AchievementProgress(Base):
    """A player's progress towards an achievement; ``unlocked_at`` is set once."""

    __tablename__ = "achievement_progress"
    __table_args__ = (
        ForeignKeyConstraint(
            ["game_id", "achievement_id"],
            ["achievements.game_id", "achievements.achievement_id"],
            name="fk_achievement_progress_achievement",
            ondelete="CASCADE",
        ),
        Index("ix_achievement_progress_player", "game_id", "player_id"),
    )

    game_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    achievement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    player_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
    unlocked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source_event_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, comment="last event applied")
    updated_at: Mapped[datetime] = _created()

    def __str__(self) -> str:
        return f"{self.achievement_id} of {self.player_id}: {self.value}"


class BattlePassProgress(Base):
    """A player's XP in a battle-pass season and the highest tier granted (each once)."""

    __tablename__ = "battle_pass_progress"
    __table_args__ = (
        ForeignKeyConstraint(
            ["game_id", "content_id"],
            ["catalog_content.game_id", "catalog_content.content_id"],
            name="fk_battle_pass_progress_content",
            ondelete="CASCADE",
        ),
        Index("ix_battle_pass_progress_player", "game_id", "player_id"),
    )

    game_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    player_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    xp: Mapped[int] = mapped_column(BigInteger)
    tier: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    previous_tier: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    updated_at: Mapped[datetime] = _created()

    def __str__(self) -> str:
        return f"{self.content_id} of {self.player_id}: {self.xp} XP, tier {self.tier}"
