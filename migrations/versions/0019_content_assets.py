"""Game content: assets, immutable versions (a trigger refuses any UPDATE), release
channels with their history, resumable uploads. Only new tables; a downgrade drops them.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "content_assets",
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "model",
                "texture",
                "audio",
                "video",
                "animation",
                "config",
                "localization",
                "bundle",
                "other",
                name="content_asset_kind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), server_default="", nullable=False),
        sa.Column(
            "tags", postgresql.ARRAY(sa.String(length=64)), server_default="{}", nullable=False
        ),
        sa.Column("row_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("asset_id", name=op.f("pk_content_assets")),
        sa.UniqueConstraint("game_id", "name", name="uq_content_assets_game_name"),
    )
    op.create_index("ix_content_assets_game_kind", "content_assets", ["game_id", "kind"])
    op.create_index("ix_content_assets_tags", "content_assets", ["tags"], postgresql_using="gin")
    op.create_table(
        "content_asset_versions",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, comment="1, 2, 3... per asset"),
        sa.Column(
            "sha256", sa.String(length=64), nullable=False, comment="hex SHA-256 of the bytes"
        ),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("filename", sa.String(length=255), server_default="", nullable=False),
        sa.Column(
            "storage_key",
            sa.String(length=512),
            nullable=False,
            comment="key under the content root",
        ),
        sa.Column("upload_id", sa.Uuid(), nullable=True),
        _now("created_at"),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["content_assets.asset_id"],
            name=op.f("fk_content_asset_versions_asset_id_content_assets"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_content_asset_versions")),
        sa.UniqueConstraint("asset_id", "version", name="uq_content_asset_versions_asset_version"),
        sa.UniqueConstraint("asset_id", "sha256", name="uq_content_asset_versions_asset_sha256"),
        sa.UniqueConstraint("upload_id", name=op.f("uq_content_asset_versions_upload_id")),
    )
    # Immutable: a version's bytes never change, so neither may its row.
    op.execute(
        """
        CREATE FUNCTION content_asset_versions_immutable() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'content_asset_versions rows are immutable (version %)', OLD.version_id
                USING ERRCODE = 'restrict_violation';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER content_asset_versions_immutable BEFORE UPDATE ON content_asset_versions"
        " FOR EACH ROW EXECUTE FUNCTION content_asset_versions_immutable()"
    )
    op.create_table(
        "content_release_channels",
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column(
            "platform", sa.String(length=32), nullable=False, comment="'all' or one platform"
        ),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("row_version", sa.Integer(), server_default="1", nullable=False),
        _now("updated_at"),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["content_assets.asset_id"],
            name=op.f("fk_content_release_channels_asset_id_content_assets"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["content_asset_versions.version_id"],
            name=op.f("fk_content_release_channels_version_id_content_asset_versions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_content_release_channels")),
        sa.UniqueConstraint(
            "asset_id",
            "name",
            "platform",
            name="uq_content_release_channels_asset_name_platform",
        ),
    )
    op.create_table(
        "content_release_channel_history",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("from_version_id", sa.Uuid(), nullable=True),
        sa.Column("to_version_id", sa.Uuid(), nullable=False),
        sa.Column(
            "row_version",
            sa.Integer(),
            nullable=False,
            comment="the channel's row version after",
        ),
        sa.Column(
            "moved_by",
            sa.String(length=128),
            nullable=False,
            comment="game key, or 'upload' for latest",
        ),
        sa.Column("reason", sa.String(length=500), server_default="", nullable=False),
        _now("moved_at"),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["content_release_channels.channel_id"],
            name=op.f("fk_content_release_channel_history_channel_id_content_release_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_release_channel_history")),
    )
    op.create_index(
        "ix_content_release_channel_history_channel",
        "content_release_channel_history",
        ["channel_id", "id"],
    )
    op.create_table(
        "content_uploads",
        sa.Column("upload_id", sa.Uuid(), nullable=False),
        sa.Column("game_id", sa.String(length=64), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("upload_length", sa.BigInteger(), nullable=False),
        sa.Column("upload_offset", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("declared_sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("filename", sa.String(length=255), server_default="", nullable=False),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
            comment="Upload-Metadata as sent, decoded",
        ),
        sa.Column(
            "parts",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
            comment="stored parts in order: offset, size, key",
        ),
        sa.Column(
            "status",
            sa.Enum(
                "receiving",
                "completed",
                "failed",
                "terminated",
                "expired",
                name="content_upload_status",
                native_enum=False,
                length=16,
            ),
            server_default="receiving",
            nullable=False,
        ),
        sa.Column("failure_reason", sa.String(length=500), nullable=True),
        sa.Column("version_id", sa.Uuid(), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["content_assets.asset_id"],
            name=op.f("fk_content_uploads_asset_id_content_assets"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("upload_id", name=op.f("pk_content_uploads")),
    )
    op.create_index(
        "ix_content_uploads_status_expires_at", "content_uploads", ["status", "expires_at"]
    )


def downgrade() -> None:
    op.drop_table("content_uploads")
    op.drop_table("content_release_channel_history")
    op.drop_table("content_release_channels")
    op.execute("DROP TRIGGER IF EXISTS content_asset_versions_immutable ON content_asset_versions")
    op.execute("DROP FUNCTION IF EXISTS content_asset_versions_immutable()")
    op.drop_table("content_asset_versions")
    op.drop_table("content_assets")
