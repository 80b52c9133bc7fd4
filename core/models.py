"""SQLAlchemy models of the application database (the head of ``migrations/``)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Double,
    Enum,
    Identity,
    Index,
    SmallInteger,
    String,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.platform.db import Base


class ScoreLog(Base):
    """One row per ``POST /v1/get_score`` call."""

    __tablename__ = "score_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    input_value: Mapped[float] = mapped_column(Double)
    score: Mapped[float] = mapped_column(Double)
    formula_version: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )

    def __str__(self) -> str:
        return f"score #{self.id} for {self.user_id}"


class AdminRole(enum.StrEnum):
    viewer = "viewer"
    editor = "editor"


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


# Importing a model module registers its tables on Base.metadata (Alembic, admin, tests).
from core.events import models as event_models  # noqa: E402,F401
from core.leaderboards import models as leaderboard_models  # noqa: E402,F401
from core.wearables import models as wearable_models  # noqa: E402,F401
