"""The ``score_log`` table: one row per ``POST /v1/get_score`` call."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Double, Identity, SmallInteger, String, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from core.platform.db import Base


class ScoreLog(Base):
    """One row per ``POST /v1/get_score`` call."""

    __tablename__ = "score_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    input_value: Mapped[float] = mapped_column(Double)
    score: Mapped[float] = mapped_column(Double)
    formula_version: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )

    def __str__(self) -> str:
        return f"score #{self.id} for {self.user_id}"
