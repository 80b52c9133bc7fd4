"""The FastAPI application: public API for game servers and the app, plus the admin panel."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.admin import mount_admin
from api.errors import INVALID, install_error_handlers
from api.kafka import kafka_lifespan
from api.middleware import RequestIdMiddleware
from api.routes import (
    achievements,
    actions,
    battles,
    catalog,
    catalog_packs,
    chain,
    content_assets,
    content_uploads,
    events,
    gifts,
    health,
    inventory,
    leaderboards,
    metrics,
    players,
    purchases,
    scores,
    wallets,
    wearables,
)
from core.platform.config import get_settings
from core.platform.gc_tuning import tune_for_throughput
from core.platform.observability import MULTIPROC_ENV, serve_metrics
from core.scores.group_log import close_batchers


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    tune_for_throughput()  # the app is built: freeze it out of the collector's way
    if os.environ.get(MULTIPROC_ENV):  # run by the supervisor: every worker counts in one
        settings = get_settings()  # endpoint, served by whichever worker binds it first
        serve_metrics(settings.metrics_host, settings.api_metrics_port)
    async with kafka_lifespan(app):
        yield
    await close_batchers()  # the score log's group-commit connections of this loop


def create_app() -> FastAPI:
    # Swagger UI and ReDoc from the fastapi-offline package, not a public CDN: /docs works on
    # a machine without internet.
    app = FastAPIOffline(
        title="Stride API",
        version="0.1.0",
        description="Scores, leaderboards, events and wallets for Stride games.",
        lifespan=lifespan,
    )
    app.add_middleware(RequestIdMiddleware, access_log_enabled=get_settings().api_access_log)
    install_error_handlers(app)
    app.include_router(health.router)
    for resource in (
        scores,
        events,
        leaderboards,
        wearables,
        wallets,
        players,
        metrics,
        chain,
        actions,
        battles,
        content_assets,
        content_uploads,
        purchases,
    ):
        # Every 422 is an ErrorBody, also where a route does not say so (FastAPI's default
        # schema for it would be HTTPValidationError, which this API never answers).
        app.include_router(resource.router, responses=INVALID)
    for economy_router in (
        catalog.router,
        catalog_packs.v2,
        catalog_packs.v1,
        inventory.router,
        gifts.router,
        achievements.router,
    ):
        app.include_router(economy_router, responses=INVALID)
    app.include_router(metrics.dashboard_router)
    mount_admin(app)
    return app


app = create_app()
