"""The FastAPI application: public API for game servers and the app, plus the admin panel."""

from __future__ import annotations

from fastapi import FastAPI

from api.admin import mount_admin
from api.errors import install_error_handlers
from api.kafka import kafka_lifespan
from api.middleware import RequestIdMiddleware
from api.routes import events, health, leaderboards, scores, wearables


def create_app() -> FastAPI:
    app = FastAPI(
        title="Stride API",
        version="0.1.0",
        description="Scores, leaderboards, events and wallets for Stride games.",
        lifespan=kafka_lifespan,
    )
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(scores.router)
    app.include_router(events.router)
    app.include_router(leaderboards.router)
    app.include_router(wearables.router)
    mount_admin(app)
    return app


app = create_app()
