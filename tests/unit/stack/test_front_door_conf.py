"""The front door's nginx configuration as rendered from the settings, and uvicorn behind it."""

from __future__ import annotations

import grp
import json
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

import cli.proxy as proxy
from api.errors import CODE_OF_STATUS
from api.routes.events import MAX_EVENT_BYTES
from api.routes.leaderboards import MAX_METADATA_BYTES
from cli.services import API, SERVICES
from cli.stack import SHARED_ROOT, Stack, StackError
from core.events.contracts import MAX_BATCH_BYTES
from core.platform.config import Settings

WWW = ("www-data", "www-data")


def render(settings: Settings, workers: tuple[str, str] | None = None) -> str:
    home = settings.state_dir / "proxy"
    return proxy.nginx_conf(settings, home, home / "api.sock", workers)


def directives(block: str, name: str) -> list[str]:
    return re.findall(rf"^\s*{name}\s+([^;]*);", block, re.MULTILINE)


def locations(conf: str) -> dict[str, str]:
    """Each ``location`` block's text by its match (no block nests braces)."""
    return {
        m.group(1).strip(): m.group(2)
        for m in re.finditer(r"^\s*location\s+([^{@]+)\{([^}]*)\}", conf, re.MULTILINE)
    }


def body_cap(conf: str, location: str) -> int:
    caps = directives(locations(conf)[location], "client_max_body_size")
    return int(caps[0]) if caps else int(directives(conf, "client_max_body_size")[0])


def test_settings_reach_the_config(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path,
        api_host="127.0.0.1",
        api_port=18080,
        api_rate_limit_per_s=7,
        api_rate_limit_burst=11,
        api_ingest_rate_limit_per_s=300,
        api_ingest_rate_limit_burst=600,
        api_login_rate_limit_per_min=4,
        api_client_header_timeout_s=1.5,
        api_client_body_timeout_s=3,
        api_max_connections_per_ip=9,
        api_game_key_rate_limit_per_s=70,
        api_game_key_rate_limit_burst=140,
        api_user_rate_limit_per_min=5,
        api_user_rate_limit_burst=3,
    )
    conf = render(settings)
    assert not re.search(r"\{\{\w+\}\}", conf)
    assert directives(conf, "listen") == ["127.0.0.1:18080"]
    assert directives(conf, "client_header_timeout") == ["1500ms"]
    assert directives(conf, "client_body_timeout") == ["3000ms"]
    assert "zone=stride_public:10m rate=7r/s" in conf
    assert "zone=stride_ingest:10m rate=300r/s" in conf
    assert "zone=stride_login:1m rate=4r/m" in conf
    # the server's, then the wearable JSON location's (which repeats the server's: nginx
    # inherits limit_conn only into a block that sets none of its own)
    assert directives(conf, "limit_conn") == [
        "stride_conn 9",
        "stride_conn 9",
        f"stride_wearable_json_ip {proxy.WEARABLE_JSON_PER_IP}",
        f"stride_wearable_json_all {proxy.WEARABLE_JSON_IN_ALL}",
    ]
    blocks = locations(conf)
    assert directives(blocks["/"], "limit_req") == ["zone=stride_public burst=11 nodelay"]
    game_key = "zone=stride_game_key burst=140 nodelay"
    app_user = "zone=stride_app_user burst=3 nodelay"
    for ingest in ("= /v1/events", "= /v1/events/batch"):
        assert directives(blocks[ingest], "limit_req") == [
            "zone=stride_ingest burst=600 nodelay",
            game_key,
        ]
    assert directives(blocks["= /v1/get_score"], "limit_req") == [
        "zone=stride_public burst=11 nodelay",
        game_key,
        app_user,
    ]
    for uploads in ("(fitbit|oura)", "(apple_health|audio)"):
        assert directives(blocks[f"~ ^/v1/wearables/{uploads}$"], "limit_req") == [
            "zone=stride_public burst=11 nodelay",
            app_user,
        ]
    assert directives(blocks["~ ^/v1/(actions|chain/[0-9]+/actions)(/|$)"], "limit_req") == [
        "zone=stride_public burst=11 nodelay",
        app_user,
    ]
    assert "$stride_game_key zone=stride_game_key:10m rate=70r/s" in conf
    assert "$stride_app_token zone=stride_app_user:10m rate=5r/m" in conf
    assert directives(blocks["= /admin/login"], "limit_req")[0].startswith("zone=stride_login")
    assert directives(conf, "limit_req_status") == ["429"]
    assert f"server unix:{tmp_path / 'proxy' / 'api.sock'}" in conf


def test_every_path_nginx_writes_is_in_the_proxy_folder(tmp_path: Path) -> None:
    conf = render(Settings(state_dir=tmp_path))
    home = str(tmp_path / "proxy")
    paths = [p for name in ("pid", "lock_file") for p in directives(conf, name)]
    paths += re.findall(r"^\s*\w+_temp_path\s+(\S+);", conf, re.MULTILINE)
    assert len(paths) == 7  # pid, lock file, and every module's temp path
    assert all(p.startswith(home + "/") for p in paths), paths
    assert directives(conf, "error_log") == ["stderr warn"]  # the supervisor's proxy.log
    assert directives(conf, "access_log") == ["off"]
    assert "/var/" not in re.sub(r"#.*", "", conf)


def test_body_caps_never_refuse_what_the_api_accepts_and_cap_the_rest(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    conf = render(settings)
    assert body_cap(conf, "/") == settings.api_max_body_bytes == 64 * 1024
    assert body_cap(conf, "/") >= max(MAX_EVENT_BYTES, MAX_METADATA_BYTES)
    assert body_cap(conf, "= /v1/events") == MAX_EVENT_BYTES
    assert body_cap(conf, "= /v1/events/batch") == MAX_BATCH_BYTES
    json_uploads = "~ ^/v1/wearables/(fitbit|oura)$"
    assert body_cap(conf, json_uploads) == settings.wearable_max_json_bytes
    files = "~ ^/v1/wearables/(apple_health|audio)$"
    assert body_cap(conf, files) == settings.wearable_max_upload_bytes + 64 * 1024
    assert directives(locations(conf)[files], "proxy_request_buffering") == ["off"]
    assert directives(locations(conf)[files], "proxy_read_timeout") == ["900000ms"]
    assert body_cap(conf, "/admin/") == 1 << 20
    assert body_cap(conf, "= /admin/login") == settings.api_max_body_bytes


def test_forwarded_headers_are_overwritten_never_appended(tmp_path: Path) -> None:
    conf = render(Settings(state_dir=tmp_path))
    headers = dict(h.split(None, 1) for h in directives(conf, "proxy_set_header"))
    assert headers["X-Forwarded-For"] == "$remote_addr"
    assert headers["X-Forwarded-Proto"] == "$scheme"
    assert headers["X-Request-ID"] == "$http_x_request_id"
    assert headers["Host"] == headers["X-Forwarded-Host"] == "$stride_host"
    assert "proxy_add_x_forwarded_for" not in conf
    # proxy_set_header is inherited only by blocks that set none of their own
    assert all("proxy_set_header" not in block for block in locations(conf).values())


def test_security_headers_and_no_version(tmp_path: Path) -> None:
    conf = render(Settings(state_dir=tmp_path))
    added = {h.split(None, 1)[0]: h for h in directives(conf, "add_header")}
    assert added["X-Content-Type-Options"] == "X-Content-Type-Options nosniff always"
    assert added["X-Frame-Options"] == "X-Frame-Options DENY always"
    assert "frame-ancestors 'none'" in added["Content-Security-Policy"]
    assert added["Referrer-Policy"] == "Referrer-Policy same-origin always"
    assert directives(conf, "server_tokens") == ["off"]
    # add_header is inherited only by blocks that add none of their own
    assert all("add_header" not in block for block in locations(conf).values())


def test_nginx_errors_answer_in_the_api_error_shape(tmp_path: Path) -> None:
    conf = render(Settings(state_dir=tmp_path))
    pages = dict(re.findall(r"error_page ([\d ]+) /__stride_error/(\d+);", conf))
    assert {"400 494", "405", "408", "413", "429", "502", "504"} <= set(pages)
    assert all(codes.split()[0] == status for codes, status in pages.items())
    assert "@stride_" not in conf  # a named location cannot take a request with no URI
    for status, code_name in ((s, c) for s, (c, _d) in proxy.ERRORS.items()):
        returned = re.search(
            rf"location = /__stride_error/{status} {{ internal; return {status} '(.*)'; }}", conf
        )
        assert returned, status
        body = json.loads(returned.group(1))
        assert body == {"detail": body["detail"], "code": code_name, "errors": []}
        if status in CODE_OF_STATUS and status not in (502, 504):
            assert code_name == CODE_OF_STATUS[status], status
    assert directives(conf, "default_type") == ["application/json"]
    # Retry-After only where the answer has none (the API's 503s carry their own)
    assert 'map "$status:$upstream_http_retry_after" $stride_retry_after' in conf
    assert "add_header Retry-After $stride_retry_after always;" in conf


def test_workers_user_only_as_root(tmp_path: Path) -> None:
    assert directives(render(Settings(state_dir=tmp_path)), "user") == []
    assert directives(render(Settings(state_dir=tmp_path), WWW), "user") == ["www-data www-data"]


def test_nginx_accepts_the_rendered_config(tmp_path: Path) -> None:
    binary = proxy.nginx_binary()
    assert binary, "nginx is installed by scripts/test.sh (Debian: nginx)"
    state = Path(tempfile.mkdtemp(prefix="stride-nginx-t-"))
    state.chmod(0o755)
    try:
        settings = Settings(state_dir=state)
        home = proxy.prepare_proxy_dir(settings)
        conf = home / "nginx.conf"
        conf.write_text(
            proxy.nginx_conf(settings, home, proxy.upstream_socket(settings), proxy.worker_user())
        )
        result = subprocess.run(
            [binary, "-t", "-q", "-p", f"{home}/", "-c", str(conf), "-e", "stderr"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    finally:
        shutil.rmtree(state)


def test_uvicorn_listens_on_its_socket_only_and_trusts_its_peers(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, api_workers=3)
    command = API.command(settings)
    assert "--host" not in command and "--port" not in command
    assert command[command.index("--uds") + 1] == str(proxy.upstream_socket(settings))
    assert command[command.index("--forwarded-allow-ips") + 1] == "*"
    assert command[command.index("--workers") + 1] == "3"
    assert API.port(settings) == 0


def test_the_proxy_serves_the_public_port_in_front_of_the_api(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, api_port=18081)
    stack = Stack(settings, SERVICES)
    order = [s.name for s in stack.order(["proxy"])]
    assert order[-2:] == ["api", "proxy"]
    assert stack.services["proxy"].port(settings) == 18081
    assert stack.services["proxy"].url(settings) == settings.api_url == "http://127.0.0.1:18081"


def test_not_as_root_the_proxy_folder_is_ours_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proxy, "worker_user", lambda: None)
    settings = Settings(state_dir=tmp_path)
    home = proxy.prepare_proxy_dir(settings)
    assert home == tmp_path / "proxy"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert proxy.upstream_socket(settings) == settings.api_upstream_socket == home / "api.sock"


def test_as_root_the_workers_group_may_enter_and_nobody_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    try:
        pwd.getpwnam("www-data")
    except KeyError:
        pytest.skip("no www-data OS user here")
    if proxy.worker_user() is None:
        pytest.skip("needs root (chown)")
    base = Path(tempfile.mkdtemp(prefix="stride-proxy-reach-"))  # /tmp: traversable by all
    base.chmod(0o755)
    private = base / "private"
    (private / "checkout").mkdir(parents=True)
    private.chmod(0o700)  # like /root, or a `mktemp -d` folder
    try:
        visible = Settings(state_dir=base / "shared")
        home = proxy.prepare_proxy_dir(visible)
        assert home == base / "shared" / "proxy"
        assert stat.S_IMODE(home.stat().st_mode) == 0o750
        assert home.stat().st_gid == grp.getgrnam("www-data").gr_gid

        hidden = Settings(state_dir=private / "checkout" / ".stride")
        moved = proxy.upstream_socket(hidden)
        assert moved.parent.parent == SHARED_ROOT
        assert moved == proxy.upstream_socket(hidden)  # the same folder on every start
    finally:
        shutil.rmtree(base)


def test_a_socket_path_too_long_for_unix_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proxy, "worker_user", lambda: None)
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    with pytest.raises(StackError, match="shorter folder"):
        proxy.prepare_socket(Settings(state_dir=deep))


def test_a_missing_nginx_says_what_to_install() -> None:
    assert "apt-get install nginx" in proxy.PROXY.missing_hint
