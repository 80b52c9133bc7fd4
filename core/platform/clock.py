"""The plausible time window of what clients report: device clocks are often unset.

An event or a sample dated outside the window would land in a lake partition nobody asks
for (and some dates overflow Delta's file statistics), so the API refuses it at the door and
the stream consumers dead-letter it when a producer bypassed the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class TimeWindow:
    """When an event or a sample may have happened: not before ``earliest`` (an unset
    device clock says 1970 or year 1) and not more than ``max_ahead`` after it was received
    (after skew correction)."""

    earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_ahead: timedelta = timedelta(days=1)

    def problem(
        self, occurred_at: datetime, received_at: datetime, field: str = "occurred_at"
    ) -> str | None:
        """Why ``occurred_at`` (skew-corrected) is implausible, or None."""
        if occurred_at < self.earliest:
            return (
                f"{field}: {occurred_at.isoformat()} is before "
                f"{self.earliest.isoformat()}; is the device clock set?"
            )
        if occurred_at - received_at > self.max_ahead:
            return (
                f"{field}: {occurred_at.isoformat()} is more than "
                f"{self.max_ahead} after the server received it ({received_at.isoformat()})"
            )
        return None


DEFAULT_WINDOW = TimeWindow()
