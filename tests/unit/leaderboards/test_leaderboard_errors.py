"""Each refusal of the leaderboards is one domain error kind, answered with its status."""

from __future__ import annotations

import pytest

from api.errors import status_of
from core.leaderboards import errors
from core.platform.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unavailable

KINDS = (Invalid, NotFound, Conflict, Forbidden, Unavailable)


@pytest.mark.parametrize(
    ("error", "kind", "status"),
    [
        (errors.InvalidDefinition, Invalid, 422),
        (errors.InvalidSchedule, Invalid, 422),
        (errors.LeaderboardExists, Conflict, 409),
        (errors.TooManyLeaderboards, Conflict, 409),
        (errors.UnknownLeaderboard, NotFound, 404),
        (errors.UnknownPeriod, NotFound, 404),
        (errors.PeriodNotStarted, Conflict, 409),
        (errors.InvalidCursor, Invalid, 400),
    ],
)
def test_each_leaderboard_error_is_one_kind_with_its_status(
    error: type[errors.LeaderboardError], kind: type[DomainError], status: int
) -> None:
    assert issubclass(error, errors.LeaderboardError)
    assert [k for k in KINDS if issubclass(error, k)] == [kind]
    raised = error("what is wrong")
    assert status_of(raised) == status
    assert str(raised) == raised.message == raised.args[0] == "what is wrong"


def test_every_leaderboard_error_is_in_the_table_above() -> None:
    defined = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.LeaderboardError)
    }
    assert defined - {errors.LeaderboardError} == {
        errors.InvalidDefinition,
        errors.InvalidSchedule,
        errors.LeaderboardExists,
        errors.TooManyLeaderboards,
        errors.UnknownLeaderboard,
        errors.UnknownPeriod,
        errors.PeriodNotStarted,
        errors.InvalidCursor,
    }


def test_the_old_bases_still_catch_them() -> None:
    """Callers that caught LookupError or ValueError before the kinds existed still do."""
    assert issubclass(errors.UnknownLeaderboard, LookupError)
    assert issubclass(errors.UnknownPeriod, LookupError)
    assert issubclass(errors.InvalidSchedule, ValueError)  # pydantic validators raise it
    assert issubclass(errors.InvalidDefinition, ValueError)
    assert issubclass(errors.InvalidCursor, ValueError)
