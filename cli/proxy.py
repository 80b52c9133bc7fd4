"""The API's front door: nginx on the public port, uvicorn behind it on a Unix socket.

``stride up`` renders ``deploy/nginx/nginx.conf.template`` with the ``STRIDE_API_*``
settings into the proxy folder (``<state>/proxy``) on every start and runs Debian's nginx
there, in the foreground, with its pid, lock, temp files and log all under that folder
(the log goes to the supervisor's ``proxy.log``), bound to ``api_host:api_port``. Its
limits are per client IP and, on writes, per credential (game key, app user token).

uvicorn listens on ``api.sock`` in the same folder (mode 0700, ours), so nothing but nginx
and the folder's owner can connect to it, and it trusts ``X-Forwarded-For`` from its socket
peers, which nginx always overwrites with the real client address. When stride runs as
root, nginx's workers run as ``www-data`` (or ``nobody``): the folder is then 0750 with
their group, and moves to ``/var/lib/stride/proxy-<hash>`` when they cannot reach the
state folder (``cli.stack.private_dir``), as PostgreSQL's data does.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import resource
import shutil
from pathlib import Path

from cli.stack import SHARED_ROOT, Reporter, Service, StackError, private_dir
from core.events.contracts import MAX_BATCH_BYTES
from core.platform.config import MULTIPART_ENVELOPE_BYTES, REPO_ROOT, Settings
from core.platform.probes import http_problem

TEMPLATE = REPO_ROOT / "deploy" / "nginx" / "nginx.conf.template"
WORKER_USERS = ("www-data", "nobody")  # Debian's nginx package creates www-data
UNIX_PATH_MAX = 107  # sun_path is 108 bytes with its NUL
# The admin panel reads forms with Starlette's defaults: up to 1 MiB per field.
ADMIN_MAX_BODY_BYTES = 1 << 20

# nginx's own error answers, in the API's error shape (api/errors.py: the same codes).
ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "malformed HTTP request"),
    408: ("request_timeout", "the request was not sent in time"),
    404: ("not_found", "no such path"),
    405: ("method_not_allowed", "this method is not allowed here"),
    413: ("too_large", "request body larger than this path accepts; send less at once"),
    414: ("uri_too_long", "request path and query too long"),
    429: (
        "rate_limited",
        "too many requests from this address or with this key or token; retry after "
        "Retry-After seconds",
    ),
    500: ("internal_error", "internal error in the front door"),
    502: ("unavailable", "the API is not answering; retry after Retry-After seconds"),
    503: ("unavailable", "the API is unavailable; retry after Retry-After seconds"),
    504: ("unavailable", "the API did not answer in time"),
    505: ("http_version_not_supported", "HTTP version not supported; send HTTP/1.1"),
}
ALSO_SERVED_AS = {400: (494,)}  # 494: request header too large, answered as 400
# Fitbit / Oura JSON uploads in progress at once (their bodies are parsed whole, ~8x their
# size in memory: 8 at the 20 MiB cap took an API worker from 374 MB to 1.58 GB).
WEARABLE_JSON_PER_IP, WEARABLE_JSON_IN_ALL = 2, 4
ERROR_PAGES_PREFIX = "/__stride_error/"  # internal locations: a client asking for one gets 404


def nginx_binary() -> str | None:
    """Debian's nginx is in /usr/sbin, which is not on every user's PATH."""
    found = shutil.which("nginx")
    if found:
        return found
    for folder in ("/usr/sbin", "/sbin"):
        if os.access(f"{folder}/nginx", os.X_OK):
            return f"{folder}/nginx"
    return None


def worker_user() -> tuple[str, str] | None:
    """User and group of nginx's worker processes when we are root (an unprivileged one);
    None otherwise: then nginx runs wholly as us."""
    if os.geteuid() != 0:
        return None
    for name in WORKER_USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return name, grp.getgrgid(entry.pw_gid).gr_name
    raise StackError(f"no unprivileged OS user for nginx's workers: create one of {WORKER_USERS}")


def proxy_dir(settings: Settings) -> Path:
    """nginx's folder (configuration, pid, temp files) and uvicorn's socket."""
    workers = worker_user()
    return private_dir(settings, workers[0] if workers else None, "proxy")


def upstream_socket(settings: Settings) -> Path:
    """uvicorn's Unix socket: ``settings.api_upstream_socket``, or where ``proxy_dir`` moved it."""
    return proxy_dir(settings) / settings.api_upstream_socket.name


def prepare_proxy_dir(settings: Settings) -> Path:
    """Create the proxy folder, readable only by us (and, as root, nginx's workers' group)."""
    home = proxy_dir(settings)
    workers = worker_user()
    if not home.is_relative_to(settings.state_dir):
        SHARED_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    (home / "temp").mkdir(parents=True, exist_ok=True)
    for folder in (home, home / "temp"):
        if workers:
            os.chown(folder, 0, grp.getgrnam(workers[1]).gr_gid)
        folder.chmod(0o750 if workers else 0o700)
    return home


def prepare_socket(settings: Settings) -> Path:
    """The proxy folder ready for uvicorn's socket, without a stale one from a crash."""
    prepare_proxy_dir(settings)
    sock = upstream_socket(settings)
    if len(os.fsencode(sock)) > UNIX_PATH_MAX:
        raise StackError(
            f"the API's Unix socket path {sock} is longer than {UNIX_PATH_MAX} bytes; "
            "set STRIDE_STATE_DIR to a shorter folder"
        )
    sock.unlink(missing_ok=True)
    return sock


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def _file_limits() -> tuple[int, int]:
    """worker_rlimit_nofile and worker_connections within this process's hard limit."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    files = 16384 if hard == resource.RLIM_INFINITY else min(hard, 16384)
    return files, max(512, files // 2)


def error_pages() -> str:
    """``error_page`` and one internal location per status nginx itself may answer.

    The pages are URIs, not named locations: nginx cannot redirect a request whose request
    line it could not parse (``%00``, a bad escape, ``/../..``, a line over the buffer) to a
    named location, and answered those with its own HTML 500; a URI it can."""
    lines = []
    for status, (code, detail) in ERRORS.items():
        body = json.dumps({"detail": detail, "code": code, "errors": []})
        if re.search(r"['$\\]", body):  # inside nginx's single quotes, no variables
            raise ValueError(f"nginx cannot return {body} as written")
        statuses = " ".join(str(s) for s in (status, *ALSO_SERVED_AS.get(status, ())))
        page = f"{ERROR_PAGES_PREFIX}{status}"
        lines.append(f"        error_page {statuses} {page};")
        lines.append(f"        location = {page} {{ internal; return {status} '{body}'; }}")
    return "\n".join(lines)


def nginx_conf(
    settings: Settings, home: Path, socket: Path, workers: tuple[str, str] | None
) -> str:
    """The rendered template: ``home`` is nginx's folder, ``socket`` uvicorn's."""
    files, connections = _file_limits()
    values = {
        "user": f"user {workers[0]} {workers[1]};" if workers else "# user: nginx runs as us",
        "worker_rlimit_nofile": str(files),
        "worker_connections": str(connections),
        "runtime_dir": str(home),
        "socket": str(socket),
        "host": settings.api_host,
        "port": str(settings.api_port),
        "client_header_timeout": _duration(settings.api_client_header_timeout_s),
        "client_body_timeout": _duration(settings.api_client_body_timeout_s),
        "proxy_read_timeout": _duration(settings.api_proxy_read_timeout_s),
        "upload_timeout": _duration(settings.api_upload_timeout_s),
        "max_body": str(settings.api_max_body_bytes),
        "batch_body": str(MAX_BATCH_BYTES),
        "wearable_json_body": str(settings.wearable_max_json_bytes),
        "wearable_json_per_ip": str(WEARABLE_JSON_PER_IP),
        "wearable_json_in_all": str(WEARABLE_JSON_IN_ALL),
        "upload_body": str(settings.wearable_max_upload_bytes + MULTIPART_ENVELOPE_BYTES),
        "admin_body": str(ADMIN_MAX_BODY_BYTES),
        "content_upload_body": str(settings.content_max_upload_bytes),
        "rate": str(settings.api_rate_limit_per_s),
        "burst": str(settings.api_rate_limit_burst),
        "ingest_rate": str(settings.api_ingest_rate_limit_per_s),
        "ingest_burst": str(settings.api_ingest_rate_limit_burst),
        "login_rate": str(settings.api_login_rate_limit_per_min),
        "login_burst": str(settings.api_login_rate_limit_burst),
        "game_key_rate": str(settings.api_game_key_rate_limit_per_s),
        "game_key_burst": str(settings.api_game_key_rate_limit_burst),
        "user_rate": str(settings.api_user_rate_limit_per_min),
        "user_burst": str(settings.api_user_rate_limit_burst),
        "max_connections": str(settings.api_max_connections_per_ip),
        "error_pages": error_pages(),
    }
    template = TEMPLATE.read_text()
    used = set(re.findall(r"\{\{(\w+)\}\}", template))
    if used != set(values):
        raise StackError(f"{TEMPLATE}: placeholders {sorted(used ^ set(values))} do not match")
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], template)


def _prepare_proxy(settings: Settings, report: Reporter) -> None:
    home = prepare_proxy_dir(settings)
    if not home.is_relative_to(settings.state_dir):
        report(
            f"proxy: nginx's workers run as {worker_user()}, who cannot reach "
            f"{settings.state_dir}; its folder and the API's socket are in {home} instead"
        )
    conf = nginx_conf(settings, home, upstream_socket(settings), worker_user())
    (home / "nginx.conf").write_text(conf)


def _nginx_command(settings: Settings) -> list[str]:
    home = proxy_dir(settings)
    return [
        nginx_binary() or "nginx",
        "-p",
        f"{home}/",
        "-c",
        str(home / "nginx.conf"),
        "-e",
        "stderr",
        "-g",
        "daemon off;",
    ]


PROXY = Service(
    name="proxy",
    description="nginx, the API's front door (timeouts, body caps, per-IP and per-key limits)",
    command=_nginx_command,
    probe=lambda s: http_problem(f"{s.api_url}/health"),
    url=lambda s: s.api_url,
    port=lambda s: s.api_port,
    depends_on=("api",),
    prepare=_prepare_proxy,
    missing_hint="Install nginx (Debian: apt-get install nginx; found on PATH or in /usr/sbin). "
    "stride runs it with its own configuration; the system's nginx service is not used.",
)
