"""The economy: catalog items, content with battle-pass tiers, packs; inventories (owner and
unlocker), grants keyed by idempotency keys, gifts, the inventory ledger; achievements and
their progress, battle-pass progress. Only new tables; a downgrade drops them.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inventory_ledger",
        sa.Column("entry_id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=128), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=True),
        sa.Column("content_id", sa.String(length=64), nullable=True),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column(
            "reason",
            sa.Enum(
                "granted",
                "gift_offered",
                "gift_received",
                "gift_returned",
                "consumed",
                name="ledger_reason",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("unlocked_by", sa.String(length=128), nullable=False),
        sa.Column("grant_id", sa.Uuid(), nullable=True),
        sa.Column("gift_id", sa.Uuid(), nullable=True),
        sa.Column("counterparty", sa.String(length=128), nullable=True),
        sa.Column(
            "operation_key",
            sa.String(length=200),
            nullable=True,
            comment="idempotency key of a consumption",
        ),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_inventory_ledger")),
    )
    op.create_index(
        "ix_inventory_ledger_owner",
        "inventory_ledger",
        ["game_id", "owner_id", "entry_id"],
        unique=False,
    )
    op.create_index(
        "uq_inventory_ledger_operation",
        "inventory_ledger",
        ["game_id", "owner_id", "operation_key"],
        unique=True,
        postgresql_where="operation_key IS NOT NULL",
    )
    op.create_table(
        "achievements",
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("achievement_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=500), server_default="", nullable=False),
        sa.Column(
            "metric", sa.String(length=32), nullable=False, comment="wins, matches, level, ..."
        ),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column(
            "rewards",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="items, xp, tokens",
        ),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False, comment="the ETag"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["game_id"],
            ["games.game_id"],
            name=op.f("fk_achievements_game_id_games"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("game_id", "achievement_id", name=op.f("pk_achievements")),
    )
    op.create_table(
        "catalog_content",
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("content_id", sa.String(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("unlockable", "battle_pass", name="content_kind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=500), server_default="", nullable=False),
        sa.Column(
            "properties",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "xp_rules",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
            comment="battle pass: XP per kind of game event",
        ),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False, comment="the ETag"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["game_id"],
            ["games.game_id"],
            name=op.f("fk_catalog_content_game_id_games"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("game_id", "content_id", name=op.f("pk_catalog_content")),
    )
    op.create_table(
        "catalog_items",
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=500), server_default="", nullable=False),
        sa.Column("stackable", sa.Boolean(), nullable=False),
        sa.Column("max_count", sa.Integer(), nullable=True, comment="per player; null: unlimited"),
        sa.Column("consumable", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("giftable", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "properties",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False, comment="the ETag"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["game_id"],
            ["games.game_id"],
            name=op.f("fk_catalog_items_game_id_games"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("game_id", "item_id", name=op.f("pk_catalog_items")),
    )
    op.create_table(
        "catalog_packs",
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("pack_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=500), server_default="", nullable=False),
        sa.Column(
            "entries",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="items with quantities, content",
        ),
        sa.Column("price_amount", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("price_currency", sa.String(length=10), nullable=False),
        sa.Column("giftable", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stock_total", sa.Integer(), nullable=True, comment="null: unlimited"),
        sa.Column("stock_sold", sa.Integer(), server_default="0", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False, comment="the ETag"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "stock_total IS NULL OR stock_sold <= stock_total", name=op.f("ck_catalog_packs_stock")
        ),
        sa.ForeignKeyConstraint(
            ["game_id"],
            ["games.game_id"],
            name=op.f("fk_catalog_packs_game_id_games"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("game_id", "pack_id", name=op.f("pk_catalog_packs")),
    )
    op.create_table(
        "gifts",
        sa.Column("gift_id", sa.Uuid(), nullable=False),
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("sender_id", sa.String(length=128), nullable=False),
        sa.Column("recipient_id", sa.String(length=128), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column(
            "escrow",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="units held: [{unlocked_by, quantity}]",
        ),
        sa.Column("message", sa.String(length=280), server_default="", nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "offered",
                "accepted",
                "declined",
                "cancelled",
                "expired",
                name="gift_status",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_gifts_quantity")),
        sa.ForeignKeyConstraint(
            ["game_id"], ["games.game_id"], name=op.f("fk_gifts_game_id_games"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("gift_id", name=op.f("pk_gifts")),
        sa.UniqueConstraint(
            "game_id", "sender_id", "idempotency_key", name="uq_gifts_idempotency_key"
        ),
    )
    op.create_index(
        "ix_gifts_open_expiry",
        "gifts",
        ["expires_at"],
        unique=False,
        postgresql_where="status = 'offered'",
    )
    op.create_index("ix_gifts_recipient", "gifts", ["recipient_id", "status"], unique=False)
    op.create_index("ix_gifts_sender", "gifts", ["sender_id", "status"], unique=False)
    op.create_table(
        "grants",
        sa.Column("grant_id", sa.Uuid(), nullable=False),
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column(
            "requested_by",
            sa.String(length=128),
            nullable=False,
            comment="whose idempotency key: the buyer, or 'progress'",
        ),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column(
            "request_hash", sa.String(length=64), nullable=False, comment="a reused key must match"
        ),
        sa.Column(
            "source",
            sa.Enum(
                "purchase",
                "achievement",
                "battle_pass",
                name="grant_source",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "source_id", sa.String(length=200), nullable=False, comment="pack, achievement or tier"
        ),
        sa.Column(
            "owner_id",
            sa.String(length=128),
            nullable=True,
            comment="app user; null: the player is not linked (unclaimed)",
        ),
        sa.Column("player_id", sa.String(length=128), nullable=True),
        sa.Column("unlocked_by", sa.String(length=128), nullable=False),
        sa.Column(
            "entries",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="what was granted",
        ),
        sa.Column("price_amount", sa.Numeric(precision=38, scale=18), nullable=True),
        sa.Column("price_currency", sa.String(length=10), nullable=True),
        sa.Column(
            "reward_command_id",
            sa.Uuid(),
            nullable=True,
            comment="the burn (price) or mint (token reward) command",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["game_id"], ["games.game_id"], name=op.f("fk_grants_game_id_games"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("grant_id", name=op.f("pk_grants")),
        sa.UniqueConstraint(
            "game_id", "requested_by", "idempotency_key", name="uq_grants_idempotency_key"
        ),
    )
    op.create_index(
        "ix_grants_owner", "grants", ["game_id", "owner_id", "created_at"], unique=False
    )
    op.create_table(
        "achievement_progress",
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("achievement_id", sa.String(length=64), nullable=False),
        sa.Column("player_id", sa.String(length=128), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("unlocked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_event_id", sa.Uuid(), nullable=True, comment="last event applied"),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["game_id", "achievement_id"],
            ["achievements.game_id", "achievements.achievement_id"],
            name="fk_achievement_progress_achievement",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "game_id", "achievement_id", "player_id", name=op.f("pk_achievement_progress")
        ),
    )
    op.create_index(
        "ix_achievement_progress_player",
        "achievement_progress",
        ["game_id", "player_id"],
        unique=False,
    )
    op.create_table(
        "battle_pass_progress",
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("content_id", sa.String(length=64), nullable=False),
        sa.Column("player_id", sa.String(length=128), nullable=False),
        sa.Column("xp", sa.BigInteger(), nullable=False),
        sa.Column("tier", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("previous_tier", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["game_id", "content_id"],
            ["catalog_content.game_id", "catalog_content.content_id"],
            name="fk_battle_pass_progress_content",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "game_id", "content_id", "player_id", name=op.f("pk_battle_pass_progress")
        ),
    )
    op.create_index(
        "ix_battle_pass_progress_player",
        "battle_pass_progress",
        ["game_id", "player_id"],
        unique=False,
    )
    op.create_table(
        "content_tiers",
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("content_id", sa.String(length=64), nullable=False),
        sa.Column("tier", sa.SmallInteger(), nullable=False),
        sa.Column("xp_required", sa.BigInteger(), nullable=False),
        sa.Column(
            "rewards",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="items and tokens",
        ),
        sa.ForeignKeyConstraint(
            ["game_id", "content_id"],
            ["catalog_content.game_id", "catalog_content.content_id"],
            name="fk_content_tiers_content",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("game_id", "content_id", "tier", name=op.f("pk_content_tiers")),
    )
    op.create_table(
        "inventory_items",
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=128), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("unlocked_by", sa.String(length=128), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column(
            "acquired_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_inventory_items_quantity")),
        sa.ForeignKeyConstraint(
            ["game_id", "item_id"],
            ["catalog_items.game_id", "catalog_items.item_id"],
            name="fk_inventory_items_item",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["app_users.user_id"],
            name=op.f("fk_inventory_items_owner_id_app_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "game_id", "owner_id", "item_id", "unlocked_by", name=op.f("pk_inventory_items")
        ),
    )
    op.create_table(
        "user_content",
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=128), nullable=False),
        sa.Column("content_id", sa.String(length=64), nullable=False),
        sa.Column("unlocked_by", sa.String(length=128), nullable=False),
        sa.Column("grant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "unlocked_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["game_id", "content_id"],
            ["catalog_content.game_id", "catalog_content.content_id"],
            name="fk_user_content_content",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["app_users.user_id"],
            name=op.f("fk_user_content_owner_id_app_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("game_id", "owner_id", "content_id", name=op.f("pk_user_content")),
    )


def downgrade() -> None:
    op.drop_table("user_content")
    op.drop_table("inventory_items")
    op.drop_table("content_tiers")
    op.drop_index("ix_battle_pass_progress_player", table_name="battle_pass_progress")
    op.drop_table("battle_pass_progress")
    op.drop_index("ix_achievement_progress_player", table_name="achievement_progress")
    op.drop_table("achievement_progress")
    op.drop_index("ix_grants_owner", table_name="grants")
    op.drop_table("grants")
    op.drop_index("ix_gifts_sender", table_name="gifts")
    op.drop_index("ix_gifts_recipient", table_name="gifts")
    op.drop_index("ix_gifts_open_expiry", table_name="gifts", postgresql_where="status = 'offered'")
    op.drop_table("gifts")
    op.drop_table("catalog_packs")
    op.drop_table("catalog_items")
    op.drop_table("catalog_content")
    op.drop_table("achievements")
    op.drop_index(
        "uq_inventory_ledger_operation",
        table_name="inventory_ledger",
        postgresql_where="operation_key IS NOT NULL",
    )
    op.drop_index("ix_inventory_ledger_owner", table_name="inventory_ledger")
    op.drop_table("inventory_ledger")
