"""The ``WearableSample`` v1 contract of ``wearable.samples.v1`` and the parsers' error type.

Every vendor format (Fitbit, Oura, Apple Health, audio recordings) becomes the same
normalized record: who, which source and device, which metric, the value in the vendor's
unit (silver normalizes units), and the interval it covers. ``start``/``end`` keep the UTC
offset the vendor reported (or, for readings reported in UTC, the user's), so ``day`` is
the user's own calendar day; a vendor that says which day a sample belongs to (Oura's
sleep ``day``) puts it in ``attributes["day"]`` and ``day`` is that. The sample id is a
UUIDv5 of the natural key: re-uploading the same data yields the same ids, and silver
dedupes on them.
"""

from __future__ import annotations

import enum
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from core.identity.ids import USER_ID_PATTERN
from core.platform.clock import DEFAULT_WINDOW

SCHEMA_VERSION: Literal[1] = 1
SAMPLE_NAMESPACE = uuid.UUID("6f1c54b2-3f0e-5b8e-9d43-2f7d3f0a9a51")
UNIT_MAX_LENGTH = 32
DEVICE_MAX_LENGTH = 256
DAY_ATTRIBUTE = "day"  # the vendor's own day of a sample, ISO 8601 (2024-03-10)

UserId = Annotated[
    str,
    Field(
        pattern=USER_ID_PATTERN,
        description="App user id: letters, digits and _ . : @ - (1-128 characters)",
        examples=["user-42"],
    ),
]


class WearableSource(enum.StrEnum):
    fitbit = "fitbit"
    oura = "oura"
    apple_health = "apple_health"
    audio = "audio"


class Metric(enum.StrEnum):
    """Metrics Stride understands; everything else in an export is skipped."""

    steps = "steps"
    heart_rate = "heart_rate"
    resting_heart_rate = "resting_heart_rate"
    sleep = "sleep"  # value: time asleep within [start, end]
    sleep_score = "sleep_score"
    distance = "distance"
    active_energy = "active_energy"
    audio_recording = "audio_recording"  # value: duration of the recording


class ParseError(ValueError):
    """A vendor document that cannot be ingested; ``location`` says where (line / field)."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message


class WearableSample(BaseModel):
    """``wearable.samples.v1`` value, version 1 (JSON, UTF-8), keyed by ``user_id``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    schema_version: Literal[1] = SCHEMA_VERSION
    sample_id: uuid.UUID
    user_id: UserId
    source: WearableSource
    metric: Metric
    value: float
    unit: Annotated[str, Field(min_length=1, max_length=UNIT_MAX_LENGTH)]
    start: AwareDatetime
    end: AwareDatetime
    device: Annotated[str, Field(max_length=DEVICE_MAX_LENGTH)] = ""
    attributes: dict[str, str] = Field(
        default_factory=dict, description="Metric-specific extras (audio: format, sha256, uri)"
    )

    @model_validator(mode="after")
    def _interval_is_ordered(self) -> WearableSample:
        if self.end < self.start:
            raise ValueError(f"end {self.end.isoformat()} is before start {self.start.isoformat()}")
        problem = DEFAULT_WINDOW.problem(self.start, datetime.now(UTC), "start") or (
            DEFAULT_WINDOW.problem(self.end, datetime.now(UTC), "end")
        )
        if problem:
            raise ValueError(problem)
        vendor_day = self.attributes.get(DAY_ATTRIBUTE)
        if vendor_day is not None:
            check_vendor_day(vendor_day, self.start, self.end)
        return self

    @property
    def day(self) -> date:
        """The user's calendar day: the vendor's own (``attributes["day"]``) when it said
        one, else in the offset the vendor reported the day a sample starts, except sleep,
        which belongs to the day the user wakes up."""
        vendor_day = self.attributes.get(DAY_ATTRIBUTE)
        if vendor_day is not None:
            return date.fromisoformat(vendor_day)
        return self.end.date() if self.metric is Metric.sleep else self.start.date()

    @classmethod
    def of(
        cls,
        *,
        user_id: str,
        source: WearableSource,
        metric: Metric,
        value: float,
        unit: str,
        start: datetime,
        end: datetime,
        device: str = "",
        attributes: dict[str, str] | None = None,
    ) -> WearableSample:
        """A sample with its deterministic id computed from the natural key."""
        return cls(
            sample_id=sample_id_for(user_id, source, metric, start, end, device),
            user_id=user_id,
            source=source,
            metric=metric,
            value=value,
            unit=unit,
            start=start,
            end=end,
            device=device,
            attributes=attributes or {},
        )


def check_vendor_day(raw: str, start: datetime, end: datetime) -> date:
    """The vendor's day ``raw`` of an interval; ``ValueError`` unless it is an ISO date
    within a day of the interval's own dates (Oura moves late naps to the next day)."""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        day = None
    if day is None or day.isoformat() != raw:
        raise ValueError(f"day {raw!r} is not a date like 2024-03-10")
    first, last = start.date() - timedelta(days=1), end.date() + timedelta(days=1)
    if not first <= day <= last:
        raise ValueError(f"day {raw!r} is not within a day of {start.date()}..{end.date()}")
    return day


def sample_id_for(
    user_id: str,
    source: WearableSource,
    metric: Metric,
    start: datetime,
    end: datetime,
    device: str,
) -> uuid.UUID:
    """UUIDv5 of (user, source, metric, start, end, device); instants compared in UTC."""
    key = "|".join(
        (
            user_id,
            source.value,
            metric.value,
            f"{start.timestamp():.3f}",
            f"{end.timestamp():.3f}",
            device,
        )
    )
    return uuid.uuid5(SAMPLE_NAMESPACE, key)


@dataclass
class ParseResult:
    """What a parser produced, and what it skipped (reason → count) without failing."""

    samples: list[WearableSample] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
