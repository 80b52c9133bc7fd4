"""Stream messages as the platform moves them: the consumed-message envelope and the
dead letter (``*.dlq.v1``) of a message that failed validation.

Every agent hands its domain function :class:`Consumed` values (the decoded value and where
it came from); every message that fails its topic's contract goes to that topic's dead-letter
topic as a :class:`DeadLetter` with the reason and the original bytes.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict

V = TypeVar("V")


@dataclass(frozen=True)
class Consumed(Generic[V]):
    """A decoded message and where it came from. ``record_time`` is the Kafka record's
    timestamp (it stands in for a missing ``received_at``)."""

    value: V
    partition: int
    offset: int
    record_time: datetime


class DeadLetter(BaseModel):
    """``*.dlq.v1`` value, version 1: a message that failed validation, as received."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    reason: str
    source_topic: str
    partition: int
    offset: int
    original_key_b64: str | None
    original_value_b64: str
    failed_at: AwareDatetime

    @classmethod
    def of(
        cls,
        reason: str,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        failed_at: datetime,
    ) -> DeadLetter:
        return cls(
            reason=reason,
            source_topic=topic,
            partition=partition,
            offset=offset,
            original_key_b64=base64.b64encode(key).decode() if key is not None else None,
            original_value_b64=base64.b64encode(value or b"").decode(),
            failed_at=failed_at,
        )

    def original_value(self) -> bytes:
        return base64.b64decode(self.original_value_b64)
