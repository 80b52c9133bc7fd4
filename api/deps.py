"""Named FastAPI dependencies, so routes read like prose."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from core.identity.credentials import CachedCredentialLookup
from core.platform.config import Settings, get_settings
from core.platform.db import get_engine


async def current_settings(request: Request) -> Settings:
    """``get_settings()`` (or a test's override of it), answered on the event loop: FastAPI
    runs a plain ``def`` dependency in a worker thread, a hop that cost get_score more CPU
    than the cached value it returns (docs/performance.md)."""
    return request.app.dependency_overrides.get(get_settings, get_settings)()


async def current_engine(request: Request) -> Engine:
    """``get_engine()`` (or a test's override of it), on the event loop likewise."""
    return request.app.dependency_overrides.get(get_engine, get_engine)()


SettingsDep = Annotated[Settings, Depends(current_settings)]
EngineDep = Annotated[Engine, Depends(current_engine)]


async def request_id(request: Request) -> str:
    return request.state.request_id


RequestIdDep = Annotated[str, Depends(request_id)]


T = TypeVar("T")


def per_app(request: Request, name: str, build: Callable[[], T]) -> T:
    """One ``T`` per FastAPI app, built on first use (e.g. a credential cache)."""
    state = request.app.state
    value = getattr(state, name, None)
    if value is None:
        value = build()
        setattr(state, name, value)
    return value


async def credential_owner(lookup: CachedCredentialLookup, secret: str) -> str | None:
    """The owner of a credential: a cached answer without leaving the event loop (most
    requests), a database lookup in a worker thread otherwise."""
    hit, owner = lookup.cached_owner(secret)
    if hit:
        return owner
    return await run_in_threadpool(lookup.owner_for, secret)
