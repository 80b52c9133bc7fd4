"""The admin panel for operations staff at ``/admin`` (sqladmin): a home page of today's
figures, leaderboard standings, browse, search, filter, export and (editors) edit every table
with an audit trail, plus a read-only SQL page.

``mount_admin(app)`` reads no settings: the database engine and the session secret are
resolved on first use, so importing ``api.main`` has no side effects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from sqladmin import Admin
from sqladmin.authentication import login_required
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.admin.audit import install_audit_trail
from api.admin.auth import AdminAuth, RoleAuthorization
from api.admin.home import home_page
from api.admin.query import QueryView
from api.admin.standings import StandingsView
from api.admin.views import ADMIN_TABLES, StrideModelView, build_view, hidden_columns_by_table
from core.platform.config import get_settings
from core.platform.db import get_engine

TEMPLATES_DIR = Path(__file__).parent / "templates"


class AdminSession(Session):
    """Sessions of the admin panel, bound to the application database of the current settings."""

    def get_bind(self, *_args: Any, **_kwargs: Any) -> Engine:
        return get_engine()


def install_statement_timeout(admin_sessions: sessionmaker[Any]) -> None:
    """Every transaction of ``admin_sessions`` stops a statement after
    ``STRIDE_ADMIN_STATEMENT_TIMEOUT_MS`` (``SET LOCAL``: the pooled connection, shared with
    the API, keeps no limit afterwards)."""

    @event.listens_for(admin_sessions, "after_begin")
    def _limit(_session: Session, _transaction: Any, connection: Connection) -> None:
        connection.execute(
            text("SELECT set_config('statement_timeout', :timeout, true)"),
            {"timeout": f"{get_settings().admin_statement_timeout_ms}ms"},
        )


class StrideAdmin(Admin):
    """sqladmin, with the reason a row may not be edited shown on the refusal page, and the
    operations dashboard as its home page (``api.admin.home``)."""

    @login_required
    async def index(self, request: Request) -> Response:
        return await home_page(self.templates, cast(sessionmaker[Any], self.session_maker), request)

    @login_required
    async def edit(self, request: Request) -> Response:
        view = self._find_model_view(request.path_params["identity"])
        if isinstance(view, StrideModelView) and (
            refusal := view.edit_refusal(request, str(request.path_params["pk"]))
        ):
            raise HTTPException(status_code=403, detail=refusal)
        return await super().edit(request)


def mount_admin(app: Starlette) -> Admin:
    """Serve the admin panel under ``/admin`` of ``app``."""
    admin_sessions = sessionmaker(class_=AdminSession)
    install_statement_timeout(admin_sessions)
    install_audit_trail(admin_sessions, hidden_columns_by_table(ADMIN_TABLES))
    auth = AdminAuth()
    admin = StrideAdmin(
        app,
        session_maker=admin_sessions,
        base_url="/admin",
        title="Stride admin",
        templates_dir=str(TEMPLATES_DIR),
        authentication_backend=auth,
        authorization_backend=RoleAuthorization(),
    )
    auth.templates = admin.templates  # the login page of a refused sign-in is sqladmin's own
    for table in ADMIN_TABLES:
        admin.add_view(build_view(table))
    admin.add_view(type("StrideStandingsView", (StandingsView,), {}))
    admin.add_view(type("StrideQueryView", (QueryView,), {}))
    return admin
