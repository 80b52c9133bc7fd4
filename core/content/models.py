"""Tables of game content: assets, their immutable versions, release channels (movable
pointers to versions, with their history) and resumable uploads.

A version row describes bytes kept in object storage (``storage_key``), never the bytes;
the database refuses to change a version once written (trigger of migration 0019).
Assets and channels carry a ``row_version``, the API's ``ETag``: a write names the one it
read (``If-Match``) and a stale one is refused.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.platform.db import Base


class AssetKind(enum.StrEnum):
    model = "model"
    texture = "texture"
    audio = "audio"
    video = "video"
    animation = "animation"
    config = "config"
    localization = "localization"
    bundle = "bundle"
    other = "other"


class UploadStatus(enum.StrEnum):
    receiving = "receiving"  # bytes still arriving (tus PATCH)
    completed = "completed"  # verified; version_id names the version
    failed = "failed"  # all bytes arrived but the SHA-256 was not the declared one
    terminated = "terminated"  # the client deleted it (tus termination)
    expired = "expired"  # no PATCH for content_upload_expiry_s: swept


class ContentAsset(Base):
    """A piece of a game's content (a model, a texture, a sound, a config file) by name."""

    __tablename__ = "content_assets"
    __table_args__ = (
        UniqueConstraint("game_id", "name", name="uq_content_assets_game_name"),
        Index("ix_content_assets_game_kind", "game_id", "kind"),
        Index("ix_content_assets_tags", "tags", postgresql_using="gin"),
    )

    asset_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    game_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[AssetKind] = mapped_column(
        Enum(AssetKind, name="content_asset_kind", native_enum=False, length=16)
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000), server_default="")
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    row_version: Mapped[int] = mapped_column(Integer, server_default="1")
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, {self.game_id})"


class ContentAssetVersion(Base):
    """One immutable version of an asset: its checksum, size, type and storage key."""

    __tablename__ = "content_asset_versions"
    __table_args__ = (
        UniqueConstraint("asset_id", "version", name="uq_content_asset_versions_asset_version"),
        UniqueConstraint("asset_id", "sha256", name="uq_content_asset_versions_asset_sha256"),
    )

    version_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("content_assets.asset_id", ondelete="RESTRICT")
    )
    game_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, comment="1, 2, 3... per asset")
    sha256: Mapped[str] = mapped_column(String(64), comment="hex SHA-256 of the bytes")
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(255))
    filename: Mapped[str] = mapped_column(String(255), server_default="")
    storage_key: Mapped[str] = mapped_column(String(512), comment="key under the content root")
    upload_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def __str__(self) -> str:
        return f"v{self.version} of {self.asset_id} ({self.sha256[:12]})"


class ContentReleaseChannel(Base):
    """A movable pointer (``latest``, ``live``, ``beta``...) from an asset, per platform,
    to one of its versions."""

    __tablename__ = "content_release_channels"
    __table_args__ = (
        UniqueConstraint(
            "asset_id", "name", "platform", name="uq_content_release_channels_asset_name_platform"
        ),
    )

    channel_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("content_assets.asset_id", ondelete="RESTRICT")
    )
    game_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(32), comment="'all' or one platform")
    version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("content_asset_versions.version_id", ondelete="RESTRICT")
    )
    row_version: Mapped[int] = mapped_column(Integer, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def __str__(self) -> str:
        return f"{self.name}/{self.platform} of {self.asset_id}"


class ContentReleaseChannelHistory(Base):
    """Every move of a release channel: from which version to which, by whom, why."""

    __tablename__ = "content_release_channel_history"
    __table_args__ = (Index("ix_content_release_channel_history_channel", "channel_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("content_release_channels.channel_id", ondelete="CASCADE")
    )
    asset_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    from_version_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    to_version_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    row_version: Mapped[int] = mapped_column(Integer, comment="the channel's row version after")
    moved_by: Mapped[str] = mapped_column(String(128), comment="game key, or 'upload' for latest")
    reason: Mapped[str] = mapped_column(String(500), server_default="")
    moved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ContentUpload(Base):
    """A resumable (tus 1.0) upload of a new version: declared length and SHA-256, the bytes
    received so far (as stored parts), and what became of it."""

    __tablename__ = "content_uploads"
    __table_args__ = (Index("ix_content_uploads_status_expires_at", "status", "expires_at"),)

    upload_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    game_id: Mapped[str] = mapped_column(String(64))
    asset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("content_assets.asset_id", ondelete="RESTRICT")
    )
    upload_length: Mapped[int] = mapped_column(BigInteger)
    upload_offset: Mapped[int] = mapped_column(BigInteger, server_default="0")
    declared_sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(255))
    filename: Mapped[str] = mapped_column(String(255), server_default="")
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, server_default="{}", comment="Upload-Metadata as sent, decoded"
    )
    parts: Mapped[list[Any]] = mapped_column(
        JSONB, server_default="[]", comment="stored parts in order: offset, size, key"
    )
    status: Mapped[UploadStatus] = mapped_column(
        Enum(UploadStatus, name="content_upload_status", native_enum=False, length=16),
        server_default="receiving",
    )
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    version_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def __str__(self) -> str:
        return f"upload {self.upload_id} ({self.status}, {self.upload_offset}/{self.upload_length})"
