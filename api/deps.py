"""Named FastAPI dependencies, so routes read like prose."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from core.config import Settings, get_settings
from core.db import get_engine

SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]


def request_id(request: Request) -> str:
    return request.state.request_id


RequestIdDep = Annotated[str, Depends(request_id)]
