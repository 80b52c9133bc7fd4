"""Tables of identity: admin panel users, their sessions, audit log and sign-in attempts;
app users, their wallets (sign-in nonces, links, audit) and the game players linked to them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.platform.db import Base


class AdminRole(enum.StrEnum):
    """Each role may do what the one before it may: viewers browse, search and export;
    editors also change data; owners also change admin users (roles, active flags)."""

    viewer = "viewer"
    editor = "editor"
    owner = "owner"

    @property
    def rank(self) -> int:
        return list(AdminRole).index(self)


class AdminUser(Base):
    """A person of the operations staff who may log in to ``/admin``."""

    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[AdminRole] = mapped_column(
        Enum(AdminRole, name="admin_role", native_enum=False, length=16)
    )
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __str__(self) -> str:
        return f"{self.username} ({self.role})"


class AdminSession(Base):
    """One signed-in session of the admin panel. The cookie holds a random token, this row
    its SHA-256; deleting the row signs the session out at once (logout, deactivation, a role
    change, a password reset). Valid while the user is active and still has ``role``."""

    __tablename__ = "admin_sessions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    admin_user_id: Mapped[int] = mapped_column(
        ForeignKey("admin_users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[AdminRole] = mapped_column(
        Enum(AdminRole, name="admin_role", native_enum=False, length=16)
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def __str__(self) -> str:
        return f"session {self.id} of admin user {self.admin_user_id} ({self.role})"


class AdminAuditLog(Base):
    """Every edit made through the admin panel: who, when, which row, before and after."""

    __tablename__ = "admin_audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    admin_username: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))
    table_name: Mapped[str] = mapped_column(String(128), index=True)
    row_pk: Mapped[str] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    def __str__(self) -> str:
        return f"{self.action} {self.table_name}#{self.row_pk} by {self.admin_username}"


class AdminLoginAttempt(Base):
    """One sign-in attempt at ``/admin/login``: the throttle counts recent failures from these.

    Shared by every API worker process, so a limit holds however many workers serve logins.
    Rows older than a day are deleted as new failures arrive (``core.identity.admin_users``).
    """

    __tablename__ = "admin_login_attempts"
    __table_args__ = (
        Index("ix_admin_login_attempts_username_attempted_at", "username", "attempted_at"),
        Index("ix_admin_login_attempts_client_ip_attempted_at", "client_ip", "attempted_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    client_ip: Mapped[str] = mapped_column(String(64))
    # False until the password is known to be right, so attempts in flight count as failures.
    succeeded: Mapped[bool] = mapped_column(Boolean)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)

    def __str__(self) -> str:
        outcome = "ok" if self.succeeded else "failed"
        return f"{self.username} from {self.client_ip} ({outcome})"


class AppUser(Base):
    """A user of the mobile app (wearable uploads); only a hash of the bearer token is kept."""

    __tablename__ = "app_users"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    token_rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __str__(self) -> str:
        return f"app user {self.user_id}"


class WalletNonce(Base):
    """A single-use sign-in nonce issued to one app user (``POST /v1/wallets/nonce``).

    ``used_at`` is set by the one verification that consumes it; a user keeps at most a few
    unused ones (``wallet_max_nonces_per_user``), older ones are deleted as new ones come."""

    __tablename__ = "wallet_nonces"

    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("app_users.user_id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __str__(self) -> str:
        return f"nonce for {self.user_id}"


class UserWallet(Base):
    """A wallet proven (EIP-4361) to belong to an app user. The address is chain-agnostic
    (the same key or contract address on every EVM chain), EIP-55 checksummed, and belongs
    to at most one user; each user has at most one primary wallet."""

    __tablename__ = "user_wallets"
    __table_args__ = (
        Index(
            "ux_user_wallets_primary",
            "user_id",
            unique=True,
            postgresql_where=text("is_primary"),
        ),
    )

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("app_users.user_id", ondelete="CASCADE"), index=True
    )
    is_primary: Mapped[bool] = mapped_column(Boolean, server_default="false")
    kind: Mapped[str] = mapped_column(String(16))  # eoa | contract (EIP-1271)
    chain_id: Mapped[int] = mapped_column(BigInteger)  # where the sign-in was verified
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def __str__(self) -> str:
        return f"{self.address} of {self.user_id}"


class PlayerLinkCode(Base):
    """A short-lived single-use code an app user gets to link one of their players in a game:
    the game server redeems it with its key (``POST /v1/players/link``). Only its SHA-256 is
    kept."""

    __tablename__ = "player_link_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("app_users.user_id", ondelete="CASCADE"), index=True
    )
    game_id: Mapped[str] = mapped_column(ForeignKey("games.game_id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __str__(self) -> str:
        return f"link code of {self.user_id} for {self.game_id}"


class PlayerLink(Base):
    """A game's player linked to the app user who consented (a player has one user at most;
    a user may have players in many games)."""

    __tablename__ = "player_links"

    game_id: Mapped[str] = mapped_column(
        ForeignKey("games.game_id", ondelete="CASCADE"), primary_key=True
    )
    player_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("app_users.user_id", ondelete="CASCADE"), index=True
    )
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def __str__(self) -> str:
        return f"{self.game_id}/{self.player_id} of {self.user_id}"


class LinkAuditLog(Base):
    """Every change of who owns what: wallet link, unlink, primary change; player link.
    Written in the same transaction as the change."""

    __tablename__ = "link_audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(32))  # wallet_linked, wallet_unlinked, ...
    subject: Mapped[str] = mapped_column(String(256), index=True)  # address or game/player
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")

    def __str__(self) -> str:
        return f"{self.action} {self.subject} by {self.user_id}"
