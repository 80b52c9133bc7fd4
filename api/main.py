"""The FastAPI application: public API for game servers and the app, plus the admin panel."""

from __future__ import annotations

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.middleware import RequestIdMiddleware
from api.routes import health, scores


def create_app() -> FastAPI:
    app = FastAPI(
        title="Stride API",
        version="0.1.0",
        description="Scores, leaderboards, events and wallets for Stride games.",
    )
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(scores.router)
    return app


app = create_app()
