"""Creating and authenticating admin panel users, their sessions, and throttling their
sign-in attempts.

Sessions live in ``admin_sessions`` (the cookie holds a random token, the table its SHA-256):
signing out deletes the row, and any change of a user's role, active flag or password made
through the ORM (the panel, the CLI) deletes all of that user's rows in the same flush. A
session is also refused at once when its user is inactive or no longer has the session's
role, however that was changed.

Throttling lives in PostgreSQL (``admin_login_attempts``) because several API worker processes
serve logins. An attempt is recorded as failed *before* its password is checked and committed,
so attempts running at the same time count against each other; a right password then flips
its row to succeeded. Attempts are serialized by a lock on ``admin_login_attempts`` itself,
held only while the recent attempts are read and the new one is recorded (milliseconds).

Not by advisory locks: any role may take any advisory lock, the read-only one of the SQL page
included, so a query could hold a sign-in up. Nothing but the application role can lock this
table (the read-only role has no right on it), and a sign-in waits at most
``LOGIN_LOCK_TIMEOUT_MS`` for any lock (maintenance), then is refused as ``Unavailable``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import bcrypt
from psycopg import errors as pg_errors
from sqlalchemy import delete, event, inspect, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper, Session

from core.identity.credentials import hash_secret, issue_secret
from core.identity.models import (
    AdminAuditLog,
    AdminLoginAttempt,
    AdminRole,
    AdminSession,
    AdminUser,
)
from core.identity.security import hash_password, verify_password
from core.platform.config import Settings
from core.platform.errors import NotFound, Unavailable

# admin_users.username's width: longer names cannot exist, so they are never looked up.
MAX_USERNAME_LENGTH = 64
# Attempts are kept at least this long, then deleted a batch at a time as failures arrive.
ATTEMPT_RETENTION = timedelta(days=1)
CLEANUP_BATCH = 100
# How long a sign-in waits for a database lock before it is refused as unavailable.
LOGIN_LOCK_TIMEOUT_MS = 5000
SIGN_IN_UNAVAILABLE = (
    "Signing in is not possible at the moment (the database is busy with maintenance); "
    "try again in a minute, and tell an engineer if it lasts."
)


class AdminUserExists(ValueError):
    pass


def create_admin_user(
    session: Session,
    username: str,
    password: str,
    role: AdminRole,
    *,
    replace: bool = False,
    actor: str = "cli",
) -> AdminUser:
    """Create an admin user (or reset password and role when ``replace``), audited as done
    by ``actor``: a new user, or a changed role, is an ``admin_audit_log`` row."""
    existing = session.scalar(select(AdminUser).where(AdminUser.username == username))
    if existing and not replace:
        raise AdminUserExists(f"admin user {username!r} already exists (use --replace to reset)")
    before = {"role": existing.role.value} if existing else None
    user = existing or AdminUser(username=username)
    user.password_hash = hash_password(password)
    user.role = role
    user.is_active = True
    session.add(user)
    session.flush()
    if before is None or before["role"] != role.value:
        _audit_role(session, actor, user, before)
    return user


def change_admin_role(session: Session, username: str, role: AdminRole, *, actor: str) -> AdminRole:
    """Give ``username`` the role ``role`` (audited as done by ``actor``, every session of the
    user ends); returns the role they had."""
    user = session.scalar(select(AdminUser).where(AdminUser.username == username))
    if user is None:
        raise NotFound(f"no admin user {username!r}")
    before = AdminRole(user.role)
    if before is not role:
        user.role = role
        session.flush()
        _audit_role(session, actor, user, {"role": before.value})
    return before


def _audit_role(
    session: Session, actor: str, user: AdminUser, before: dict[str, str] | None
) -> None:
    session.add(
        AdminAuditLog(
            admin_username=actor[:64],
            action="create" if before is None else "edit",
            table_name=AdminUser.__tablename__,
            row_pk=str(user.id),
            before=before,
            after={"username": user.username, "role": AdminRole(user.role).value},
        )
    )


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


# ---- sessions ----------------------------------------------------------------------------

# Changing one of these ends every session of the user.
SESSION_ENDING_COLUMNS = ("role", "is_active", "password_hash")


def open_session(session: Session, user: AdminUser, now: datetime, lifetime: timedelta) -> str:
    """A new session of ``user`` until ``now + lifetime``; returns the token for the cookie.
    Expired sessions (of anyone) are deleted on the way."""
    session.execute(delete(AdminSession).where(AdminSession.expires_at <= now))
    issued = issue_secret("")
    session.add(
        AdminSession(
            token_hash=issued.digest,
            admin_user_id=user.id,
            role=user.role,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return issued.secret


def session_user(session: Session, token: str, now: datetime) -> AdminUser | None:
    """The active admin whose unexpired session ``token`` is, if they still have its role."""
    return session.scalar(
        select(AdminUser)
        .join(AdminSession, AdminSession.admin_user_id == AdminUser.id)
        .where(
            AdminSession.token_hash == hash_secret(token),
            AdminSession.expires_at > now,
            AdminSession.role == AdminUser.role,
            AdminUser.is_active,
        )
    )


def close_session(session: Session, token: str) -> None:
    session.execute(delete(AdminSession).where(AdminSession.token_hash == hash_secret(token)))


@event.listens_for(AdminUser, "after_update")
def _end_sessions_of_a_changed_user(_mapper: Mapper, conn: Connection, user: AdminUser) -> None:
    state = inspect(user)
    if any(state.attrs[c].history.has_changes() for c in SESSION_ENDING_COLUMNS):
        conn.execute(delete(AdminSession).where(AdminSession.admin_user_id == user.id))


# ---- sign-in throttling ------------------------------------------------------------------


@dataclass(frozen=True)
class LoginLimits:
    """How many failed sign-ins a username or client IP may have within ``window``."""

    per_username: int
    per_ip: int
    window: timedelta
    lockout: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginLimits:
        return cls(
            per_username=settings.admin_login_max_failures_per_username,
            per_ip=settings.admin_login_max_failures_per_ip,
            window=timedelta(seconds=settings.admin_login_window_s),
            lockout=timedelta(seconds=settings.admin_login_lockout_s),
        )

    @property
    def lookback(self) -> timedelta:
        """How far back attempts can matter: a lock's failures plus the lock itself."""
        return self.window + self.lockout


@dataclass(frozen=True)
class LoginRefused:
    """A sign-in refused without checking its password, and until when."""

    locked: Literal["username", "client_ip"]
    until: datetime

    def message(self, now: datetime) -> str:
        minutes = max(1, math.ceil((self.until - now).total_seconds() / 60))
        wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
        whose = "for this account" if self.locked == "username" else "from your network address"
        return f"Too many failed sign-in attempts {whose}; try again in {wait}."


def lock_ends_at(
    attempts: Iterable[tuple[datetime, bool]],
    now: datetime,
    *,
    limit: int,
    window: timedelta,
    lockout: timedelta,
) -> datetime | None:
    """When the lock on one username or IP ends, or None if sign-ins are allowed at ``now``.

    ``attempts`` are (attempted_at, succeeded) in the order they were made. The ``limit``-th
    failure within ``window`` of each other locks for ``lockout`` from that failure; a
    success, or the end of a lock, starts the count afresh. Attempts made during a lock are
    ignored (after a lower limit is configured, older rows may fall inside a lock).
    """
    failures: list[datetime] = []
    lock_end: datetime | None = None
    for at, succeeded in sorted(attempts, key=lambda a: a[0]):
        if succeeded:
            failures, lock_end = [], None
            continue
        if lock_end is not None:
            if at < lock_end:
                continue
            lock_end = None
        failures = [f for f in failures if f > at - window]
        failures.append(at)
        if len(failures) >= limit:
            failures, lock_end = [], at + lockout
    return lock_end if lock_end is not None and lock_end > now else None


@contextmanager
def _bounded_lock_waits(session: Session) -> Iterator[None]:
    """Statements in the block give up on a lock after ``LOGIN_LOCK_TIMEOUT_MS``, and the
    sign-in is refused as ``Unavailable`` rather than left hanging."""
    session.execute(
        text("SELECT set_config('lock_timeout', :timeout, true)"),
        {"timeout": f"{int(LOGIN_LOCK_TIMEOUT_MS)}ms"},
    )
    try:
        yield
    except sa_exc.OperationalError as error:
        if isinstance(error.orig, pg_errors.LockNotAvailable):
            raise Unavailable(SIGN_IN_UNAVAILABLE, retry_after_s=60) from error
        raise


def _serialize_attempts(session: Session) -> None:
    """One sign-in at a time reads and records attempts (``SHARE ROW EXCLUSIVE`` conflicts
    with itself and with writes, not with reads: the admin panel still lists the table)."""
    session.execute(text("LOCK TABLE admin_login_attempts IN SHARE ROW EXCLUSIVE MODE"))


def _username_attempts(
    session: Session, username: str, since: datetime, up_to_id: int | None = None
) -> list[tuple[datetime, bool]]:
    query = select(AdminLoginAttempt.attempted_at, AdminLoginAttempt.succeeded).where(
        AdminLoginAttempt.username == username, AdminLoginAttempt.attempted_at > since
    )
    if up_to_id is not None:
        query = query.where(AdminLoginAttempt.id <= up_to_id)
    rows = session.execute(query.order_by(AdminLoginAttempt.id))
    return [(at, ok) for at, ok in rows]


def _ip_failures(
    session: Session, client_ip: str, since: datetime, up_to_id: int | None = None
) -> list[tuple[datetime, bool]]:
    """Only failures: a success does not reset an IP's count, or one valid account would
    let its owner spray every other username without limit."""
    query = select(AdminLoginAttempt.attempted_at).where(
        AdminLoginAttempt.client_ip == client_ip,
        AdminLoginAttempt.attempted_at > since,
        AdminLoginAttempt.succeeded.is_(False),
    )
    if up_to_id is not None:
        query = query.where(AdminLoginAttempt.id <= up_to_id)
    rows = session.scalars(query.order_by(AdminLoginAttempt.id))
    return [(at, False) for at in rows]


def start_login_attempt(
    session: Session, username: str, client_ip: str, limits: LoginLimits, now: datetime
) -> int | LoginRefused:
    """Refuse a locked username or IP, else record the attempt as failed and return its id.

    Commit before checking the password, so that attempts made meanwhile count this one.
    """
    with _bounded_lock_waits(session):
        _serialize_attempts(session)
        return _start_login_attempt(session, username, client_ip, limits, now)


def _start_login_attempt(
    session: Session, username: str, client_ip: str, limits: LoginLimits, now: datetime
) -> int | LoginRefused:
    since = now - limits.lookback
    until = lock_ends_at(
        _username_attempts(session, username, since),
        now,
        limit=limits.per_username,
        window=limits.window,
        lockout=limits.lockout,
    )
    if until is not None:
        return LoginRefused("username", until)
    until = lock_ends_at(
        _ip_failures(session, client_ip, since),
        now,
        limit=limits.per_ip,
        window=limits.window,
        lockout=limits.lockout,
    )
    if until is not None:
        return LoginRefused("client_ip", until)
    attempt = AdminLoginAttempt(
        username=username, client_ip=client_ip, succeeded=False, attempted_at=now
    )
    session.add(attempt)
    session.flush()
    return attempt.id


def finish_login_attempt(
    session: Session, attempt_id: int, *, succeeded: bool, limits: LoginLimits
) -> None:
    """Mark a right password; for a wrong one, audit the lock it starts and prune old rows."""
    with _bounded_lock_waits(session):
        _finish_login_attempt(session, attempt_id, succeeded=succeeded, limits=limits)


def _finish_login_attempt(
    session: Session, attempt_id: int, *, succeeded: bool, limits: LoginLimits
) -> None:
    if succeeded:
        session.execute(
            update(AdminLoginAttempt)
            .where(AdminLoginAttempt.id == attempt_id)
            .values(succeeded=True)
        )
        return
    attempt = session.get_one(AdminLoginAttempt, attempt_id)
    at, since = attempt.attempted_at, attempt.attempted_at - limits.lookback
    for locked, attempts, limit in (
        (
            "username",
            _username_attempts(session, attempt.username, since, attempt_id),
            limits.per_username,
        ),
        ("client_ip", _ip_failures(session, attempt.client_ip, since, attempt_id), limits.per_ip),
    ):
        until = lock_ends_at(
            attempts, at, limit=limit, window=limits.window, lockout=limits.lockout
        )
        if until == at + limits.lockout:  # this very failure reached the limit
            session.add(_lockout_audit_row(attempt, locked, limit, limits, until))
    cutoff = at - max(ATTEMPT_RETENTION, limits.lookback)
    oldest = (
        select(AdminLoginAttempt.id)
        .where(AdminLoginAttempt.attempted_at < cutoff)
        .order_by(AdminLoginAttempt.attempted_at)
        .limit(CLEANUP_BATCH)
    )
    session.execute(
        delete(AdminLoginAttempt)
        .where(AdminLoginAttempt.id.in_(oldest.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )


def _lockout_audit_row(
    attempt: AdminLoginAttempt, locked: str, limit: int, limits: LoginLimits, until: datetime
) -> AdminAuditLog:
    """What operators see in the audit log: which account or address, why, until when."""
    return AdminAuditLog(
        admin_username=attempt.username,
        action="lockout",
        table_name=AdminLoginAttempt.__tablename__,
        row_pk=str(attempt.id),
        before=None,
        after={
            "locked": locked,
            "username": attempt.username,
            "client_ip": attempt.client_ip,
            "failures": limit,
            "window_s": int(limits.window.total_seconds()),
            "locked_until": until.isoformat(),
        },
    )
