"""The ``metrics.samples.v1`` contract: one sample of one metric for one minute."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

METRIC_KEY_PATTERN = r"^[a-z0-9][a-z0-9_.\-]*(/[A-Za-z0-9_.\-]+)?$"


class MetricSampleV1(BaseModel):
    """``metrics.samples.v1`` value, version 1, keyed by ``metric_key``. ``(metric_id,
    minute)`` is its idempotency key: a replayed sample changes nothing downstream."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    metric_id: int = Field(ge=1)
    metric_key: str = Field(max_length=200, pattern=METRIC_KEY_PATTERN)
    minute: AwareDatetime = Field(description="the minute measured (seconds are zero)")
    value: float = Field(allow_inf_nan=False)
    sampled_at: AwareDatetime

    @field_validator("minute")
    @classmethod
    def _whole_minute(cls, value: datetime) -> datetime:
        if value.second or value.microsecond:
            raise ValueError("minute must be a whole minute (seconds and microseconds 0)")
        return value


def parse_metric_sample(raw: bytes) -> MetricSampleV1:
    return MetricSampleV1.model_validate_json(raw)
