"""Who may use the admin panel and what each role may do.

Login checks ``admin_users`` (bcrypt, ``core.identity.admin_users``) and opens a session in
``admin_sessions``, valid 8 hours; the signed cookie (Starlette ``SessionMiddleware``, scoped
to ``/admin``, ``HttpOnly``, ``SameSite=Strict``, ``Secure`` outside the local stack) holds
only that session's token. Every request looks the session up, so signing out, deactivating a
user, changing a role or resetting a password ends it at once, and a copied cookie with it.
Unsafe methods from another origin are refused (CSRF defence on top of SameSite).
Failed sign-ins are throttled per username and per client IP
(``core.identity.admin_users``): past the limit the login page answers 429 without
checking the password, until the lock ends.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import anyio
from sqladmin.authentication import AuthenticationBackend
from sqladmin.authorization import Action, AuthorizationBackend
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.identity.admin_users import (
    MAX_USERNAME_LENGTH,
    LoginLimits,
    LoginRefused,
    authenticate,
    close_session,
    finish_login_attempt,
    open_session,
    session_user,
    start_login_attempt,
)
from core.identity.models import AdminRole
from core.platform.config import Settings, get_settings
from core.platform.db import session_scope
from core.platform.errors import Unavailable

SESSION_COOKIE = "stride_admin_session"
SESSION_MAX_AGE_S = 8 * 3600
VIEWER_ACTIONS = frozenset({Action.LIST, Action.DETAILS, Action.EXPORT})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class SignedInAdmin:
    id: int
    username: str
    role: AdminRole


def role_allows(
    role: AdminRole | None,
    action: str,
    *,
    view_role: AdminRole = AdminRole.viewer,
    change_role: AdminRole = AdminRole.editor,
) -> bool:
    """Whether ``role`` may do ``action`` on a view that ``view_role`` (and above) may see and
    ``change_role`` (and above) may change: by default viewers browse, search, filter and
    export, editors and owners may also create, edit and delete."""
    if role is None or role.rank < view_role.rank:
        return False
    return action in VIEWER_ACTIONS or role.rank >= max(change_role.rank, AdminRole.editor.rank)


def session_cookie_options(settings: Settings) -> dict[str, Any]:
    return {
        "session_cookie": SESSION_COOKIE,
        "max_age": SESSION_MAX_AGE_S,
        "path": "/admin",
        "same_site": "strict",
        "https_only": not settings.is_local,
    }


def is_cross_origin(origin: str | None, referer: str | None, hosts: Collection[str | None]) -> bool:
    """Whether an unsafe request was sent by a page of another site.

    Browsers send ``Origin`` on every cross-origin POST; ``Referer`` is the fallback. A request
    without either did not come from a browser page, so it cannot be a forged one. ``hosts``
    are the names this server answers to (``Host``, and ``X-Forwarded-Host`` behind a proxy;
    a forged form cannot set either).
    """
    source = origin if origin is not None else referer
    if source is None:
        return False
    known = {h.strip().lower() for h in hosts if h}
    return source == "null" or urlsplit(source).netloc.lower() not in known


def current_admin(request: Request) -> SignedInAdmin | None:
    return getattr(request.state, "stride_admin", None)


class AdminSessionMiddleware:
    """Starlette sessions with the secret read from the settings on first use, not at import."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._sessions: SessionMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._sessions is None:
            settings = get_settings()
            self._sessions = SessionMiddleware(
                self.app, secret_key=settings.session_secret, **session_cookie_options(settings)
            )
        await self._sessions(scope, receive, send)


class SameOriginGuard:
    """Refuse cross-origin unsafe requests; admin pages may not be framed nor cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if request.method in UNSAFE_METHODS and is_cross_origin(
            request.headers.get("origin"),
            request.headers.get("referer"),
            (request.headers.get("host"), request.headers.get("x-forwarded-host")),
        ):
            response = PlainTextResponse(
                "Cross-site request refused: submit the form from the admin panel itself.",
                status_code=403,
            )
            await response(scope, receive, send)
            return

        extra_headers = [
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
        ]
        if "/statics/" not in scope["path"]:
            extra_headers.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *(h for h in message.get("headers", []) if h[0] != b"cache-control"),
                    *extra_headers,
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def utc_now() -> datetime:
    return datetime.now(UTC)


def client_address(request: Request) -> str:
    """The peer as uvicorn reports it (forwarded headers only from its trusted proxies)."""
    return request.client.host[:64] if request.client else "unknown"


def _check_credentials(
    username: str, password: str, client_ip: str, now: datetime
) -> str | LoginRefused | None:
    """The token of a new session, a refusal (throttled), or None if the password is wrong."""
    limits = LoginLimits.from_settings(get_settings())
    with session_scope() as session:
        attempt = start_login_attempt(session, username, client_ip, limits, now)
    if isinstance(attempt, LoginRefused):
        return attempt
    with session_scope() as session:
        user = authenticate(session, username, password)
        finish_login_attempt(session, attempt, succeeded=user is not None, limits=limits)
        if user is None:
            return None
        return open_session(session, user, now, timedelta(seconds=SESSION_MAX_AGE_S))


async def _refused_login_page(
    request: Request, reason: str, status_code: int, retry_after_s: float, templates: Any
) -> Response:
    """sqladmin's own login page with the reason, answered with ``Retry-After``."""
    response: Response = await templates.TemplateResponse(
        request, "sqladmin/login.html", {"error": reason}, status_code=status_code
    )
    response.headers["retry-after"] = str(max(1, int(retry_after_s)))
    return response


def _load_admin(token: str, now: datetime) -> SignedInAdmin | None:
    with session_scope() as session:
        user = session_user(session, token, now)
        return None if user is None else SignedInAdmin(user.id, user.username, AdminRole(user.role))


def _close_session(token: str) -> None:
    with session_scope() as session:
        close_session(session, token)


class AdminAuth(AuthenticationBackend):
    """sqladmin login backed by ``admin_users``."""

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        # No super().__init__: the session middleware reads its secret lazily.
        self.middlewares = [Middleware(SameOriginGuard), Middleware(AdminSessionMiddleware)]
        self.clock = clock  # the throttle's time; tests move it instead of sleeping
        self.templates: Any = None  # the Admin's templates, set by ``api.admin.mount_admin``

    async def login(self, request: Request) -> Response | bool:
        form = await request.form()
        username = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        if not username or not password or len(username) > MAX_USERNAME_LENGTH:
            return False
        now = self.clock()
        try:
            signed_in = await anyio.to_thread.run_sync(
                _check_credentials, username, password, client_address(request), now
            )
        except Unavailable as busy:
            return await _refused_login_page(
                request, busy.message, 503, busy.retry_after_s, self.templates
            )
        if isinstance(signed_in, LoginRefused):
            wait_s = (signed_in.until - now).total_seconds()
            return await _refused_login_page(
                request, signed_in.message(now), 429, wait_s, self.templates
            )
        if signed_in is None:
            return False
        if isinstance(previous := request.session.get("sid"), str):
            await anyio.to_thread.run_sync(_close_session, previous)  # signing in again
        request.session.clear()
        request.session["sid"] = signed_in
        return True

    async def logout(self, request: Request) -> Response:
        token = request.session.get("sid")
        if isinstance(token, str):
            await anyio.to_thread.run_sync(_close_session, token)
        request.session.clear()
        return RedirectResponse(request.url_for("admin:login"), status_code=302)

    async def authenticate(self, request: Request) -> bool:
        if current_admin(request) is not None:
            return True  # already looked up for this request
        token = request.session.get("sid")
        if not isinstance(token, str):
            request.session.clear()  # no session, or a cookie from before server-side sessions
            return False
        admin = await anyio.to_thread.run_sync(_load_admin, token, self.clock())
        if admin is None:
            request.session.clear()
            return False
        request.state.stride_admin = admin
        return True

    async def get_user_id(self, request: Request) -> Any:
        admin = current_admin(request)
        return admin.username if admin else None


class RoleAuthorization(AuthorizationBackend):
    """Checks every sqladmin action against the signed-in admin's role, server side."""

    def has_permission(
        self, request: Request, identity: str, action: str, obj: Any | None = None
    ) -> bool:
        admin = current_admin(request)
        return admin is not None and role_allows(admin.role, action)
