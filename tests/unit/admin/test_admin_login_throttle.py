"""The sign-in throttle's decision: given recent attempts, allowed or locked until when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from core.identity.admin_users import LoginLimits, LoginRefused, lock_ends_at
from core.platform.config import Settings

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)


def minutes(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


def lock(attempts: list[tuple[datetime, bool]], now: datetime, limit: int = 3) -> datetime | None:
    return lock_ends_at(attempts, now, limit=limit, window=WINDOW, lockout=LOCKOUT)


def failures(*at: float) -> list[tuple[datetime, bool]]:
    return [(minutes(m), False) for m in at]


def test_the_limit_th_failure_locks_from_its_own_time() -> None:
    assert lock(failures(0, 1), minutes(2)) is None
    assert lock(failures(0, 1, 2), minutes(2)) == minutes(17)
    assert lock(failures(0, 1, 2), minutes(16.9)) == minutes(17)


def test_the_lock_ends() -> None:
    assert lock(failures(0, 1, 2), minutes(17)) is None


def test_failures_outside_the_window_do_not_count() -> None:
    assert lock(failures(0, 10, 16), minutes(16)) is None  # 0 is 16 minutes before 16
    assert lock(failures(0, 10, 14), minutes(16)) == minutes(29)


def test_a_success_resets_the_count() -> None:
    attempts = [*failures(0, 1), (minutes(2), True), *failures(3, 4)]
    assert lock(attempts, minutes(5)) is None
    assert lock([*attempts, *failures(5)], minutes(5)) == minutes(20)


def test_the_count_starts_afresh_after_a_lock() -> None:
    # Window longer than the lock: the failures that caused it must not lock again at once.
    attempts = failures(0, 1, 2, 30)
    long_window = timedelta(hours=1)
    assert lock_ends_at(attempts, minutes(30), limit=3, window=long_window, lockout=LOCKOUT) is None
    attempts += failures(31, 32)
    assert lock_ends_at(
        attempts, minutes(32), limit=3, window=long_window, lockout=LOCKOUT
    ) == minutes(47)


def test_attempts_during_a_lock_do_not_extend_it() -> None:
    # Rows recorded under a higher limit, read after the limit was lowered to 3.
    assert lock(failures(0, 1, 2, 10, 11), minutes(12)) == minutes(17)


def test_order_of_rows_does_not_matter() -> None:
    assert lock(failures(2, 0, 1), minutes(3)) == minutes(17)


def test_refusal_message_names_the_account_or_the_address_and_whole_minutes() -> None:
    by_name = LoginRefused("username", minutes(15))
    assert by_name.message(minutes(0)) == (
        "Too many failed sign-in attempts for this account; try again in 15 minutes."
    )
    assert by_name.message(minutes(14.5)).endswith("try again in 1 minute.")
    assert "from your network address" in LoginRefused("client_ip", minutes(3)).message(T0)


def test_limits_come_from_the_settings() -> None:
    limits = LoginLimits.from_settings(Settings())
    assert (limits.per_username, limits.per_ip) == (5, 20)
    assert limits.window == limits.lockout == timedelta(minutes=15)


offsets = st.lists(st.floats(min_value=0, max_value=120), max_size=30)


@given(offsets, st.integers(min_value=1, max_value=6), st.floats(min_value=0, max_value=200))
def test_a_lock_never_outlasts_the_lockout(at: list[float], limit: int, now: float) -> None:
    """Whatever the history, a lock ends within ``lockout`` of the latest failure."""
    until = lock(failures(*at), minutes(now), limit)
    if until is not None:
        assert minutes(now) < until <= minutes(max(at)) + LOCKOUT


@given(offsets, st.integers(min_value=1, max_value=6))
def test_fewer_failures_than_the_limit_never_lock(at: list[float], limit: int) -> None:
    if len(at) < limit:
        assert lock(failures(*at), minutes(max(at, default=0)), limit) is None


@given(offsets, st.integers(min_value=1, max_value=6))
def test_a_success_after_every_failure_unlocks(at: list[float], limit: int) -> None:
    last = max(at, default=0)
    attempts = [*failures(*at), (minutes(last), True)]
    assert lock(attempts, minutes(last), limit) is None


@given(st.lists(st.floats(min_value=0, max_value=14), min_size=1, max_size=6))
def test_limit_failures_within_the_window_lock_from_the_last(at: list[float]) -> None:
    limit = len(at)
    until = lock(failures(*at), minutes(max(at)), limit)
    assert until == minutes(max(at)) + LOCKOUT
