"""Domain errors: what ``core/`` raises when it refuses a request, HTTP-agnostic.

Each kind names a category callers can act on; the message says what is wrong in the
caller's terms (which id, which field, which limit). The API maps the kinds to status codes
and to its one JSON error shape in :mod:`api.errors`; the CLI and jobs print the message.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refusal with a message for the caller. ``code`` is stable and machine-readable."""

    code = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Invalid(DomainError, ValueError):
    """The input breaks a rule (a field out of range, an impossible combination)."""

    code = "invalid"


class NotFound(DomainError, LookupError):
    """The thing named does not exist (or is not visible to this caller)."""

    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state (an id taken, a period not started)."""

    code = "conflict"


class Forbidden(DomainError):
    """The caller is known but may not do this (another game's data, another user's)."""

    code = "forbidden"


class Unavailable(DomainError):
    """A dependency (database, broker) is down; the same request may succeed later."""

    code = "unavailable"

    def __init__(self, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
