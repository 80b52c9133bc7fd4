"""Creating and authenticating admin panel users."""

from __future__ import annotations

from datetime import UTC, datetime

import bcrypt
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AdminRole, AdminUser
from core.security import hash_password, verify_password


class AdminUserExists(ValueError):
    pass


def create_admin_user(
    session: Session, username: str, password: str, role: AdminRole, *, replace: bool = False
) -> AdminUser:
    """Create an admin user (or reset password and role when ``replace``)."""
    existing = session.scalar(select(AdminUser).where(AdminUser.username == username))
    if existing and not replace:
        raise AdminUserExists(f"admin user {username!r} already exists (use --replace to reset)")
    user = existing or AdminUser(username=username)
    user.password_hash = hash_password(password)
    user.role = role
    user.is_active = True
    session.add(user)
    session.flush()
    return user


# Checked against when the username is unknown, so both failures take the same time.
_DUMMY_HASH = bcrypt.hashpw(b"stride-no-such-user", bcrypt.gensalt()).decode()


def authenticate(session: Session, username: str, password: str) -> AdminUser | None:
    user = session.scalar(select(AdminUser).where(AdminUser.username == username))
    if user is None:
        verify_password(password, _DUMMY_HASH)
        return None
    if not user.is_active or not verify_password(password, user.password_hash):
        return None
    user.last_login_at = datetime.now(UTC)
    return user
