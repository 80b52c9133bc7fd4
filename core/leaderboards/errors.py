"""What the leaderboards refuse, each refusal one kind of :mod:`core.platform.errors`.

The API answers each kind with its status code and error body (``api/errors.py``), so the
routes just call the leaderboard functions; the CLI prints the message. Catch
``LeaderboardError`` to catch every one of them.
"""

from __future__ import annotations

from core.platform.errors import Conflict, DomainError, Invalid, NotFound


class LeaderboardError(DomainError):
    """Any refusal of the leaderboards; the message says why and what to do."""


class InvalidDefinition(LeaderboardError, Invalid):
    """A definition that breaks a rule: an id of the wrong shape, a game that does not exist."""


class InvalidSchedule(LeaderboardError, Invalid):
    """A reset schedule that is not a 5-field cron expression (a ``ValueError``, so pydantic
    validators can raise it too)."""


class LeaderboardExists(LeaderboardError, Conflict):
    """The leaderboard id is taken."""


class TooManyLeaderboards(LeaderboardError, Conflict):
    """The game has as many leaderboards as a game may have."""

    code = "too_many_leaderboards"


class UnknownLeaderboard(LeaderboardError, NotFound):
    """No leaderboard has this id."""


class UnknownPeriod(LeaderboardError, NotFound):
    """The leaderboard has no period starting at the time asked for."""


class PeriodNotStarted(LeaderboardError, Conflict):
    """A reset named a period later than the current one."""


class InvalidCursor(LeaderboardError, Invalid):
    """A cursor the API did not return, or one of another leaderboard: a bad request (400),
    not a field that failed validation (422)."""

    code = "bad_request"
