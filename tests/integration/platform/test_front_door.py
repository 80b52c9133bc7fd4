"""The front door (nginx) before uvicorn, as `stride up` runs it, with real clients.

Slow clients are cut off, bodies over a path's cap are refused before anyone reads them,
bursts from one address get JSON 429s while a game server's ingest goes through, the
client address the API records is the real peer whatever a client claims, and uvicorn is
reachable on no TCP port. Each test that spends a rate limit connects from an address of
its own in 127.0.0.0/8, so no other test shares its bucket. The test settings set the
header and body timeouts to 2 s (``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import itertools
import json
import os
import select
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from cli.proxy import ERRORS, PROXY, upstream_socket
from cli.stack import Stack, free_port, port_is_free
from core.events.contracts import MAX_BATCH_BYTES
from core.platform.config import Settings
from tests.streaming_helpers import GameWithKey, game_fixture, score_event  # noqa: F401

pytestmark = pytest.mark.integration

_addresses = itertools.count()


def own_address() -> str:
    """A loopback address no other test of this session connects from."""
    n = next(_addresses)
    return f"127.0.{n // 250}.{n % 250 + 2}"


def client_from(base: str, address: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=base, transport=transport, timeout=30)


def connect(settings: Settings, address: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(
        (settings.api_host, settings.api_port), timeout=10, source_address=(address, 0)
    )


def closed_by_server(sock: socket.socket, wait: float) -> bool:
    """Whether the server closes the connection (EOF or reset) within ``wait`` seconds,
    without answering."""
    readable, _, _ = select.select([sock], [], [], wait)
    if not readable:
        return False
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def response(sock: socket.socket) -> tuple[int, http.client.HTTPMessage, bytes]:
    answer = http.client.HTTPResponse(sock)
    answer.begin()
    return answer.status, answer.headers, answer.read()


def nginx_error(status: int) -> dict[str, object]:
    code, detail = ERRORS[status]
    return {"detail": detail, "code": code, "errors": []}


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"GET /v1/leaderboards/%00 HTTP/1.1", 400),
        (b"GET /v1/%zz HTTP/1.1", 400),
        (b"GET /../../etc/passwd HTTP/1.1", 400),
        (b"GET /v1/x\x01y HTTP/1.1", 400),
        (b"GARBAGE", 400),
        (b"GET /v1/leaderboards?" + b"a" * 9000 + b" HTTP/1.1", 414),
        (b"TRACE /v1/leaderboards HTTP/1.1", 405),
        (b"GET /__stride_error/400 HTTP/1.1", 404),
    ],
)
def test_a_request_nginx_cannot_parse_gets_the_json_error_shape(
    live_api: str, stack_settings: Settings, request_line: bytes, status: int
) -> None:
    """Not nginx's HTML 500: it could not redirect a request without a URI to a named
    location (``empty URI in redirect to named location``); its error pages are URIs now."""
    with connect(stack_settings, own_address()) as sock:
        sock.sendall(request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
        got, headers, body = response(sock)
    assert (got, headers["Content-Type"]) == (status, "application/json")
    assert json.loads(body) == nginx_error(status)


# ---- slow clients ----------------------------------------------------------------------


def test_a_client_dripping_its_header_is_cut_off(live_api: str, stack_settings: Settings) -> None:
    header = b"GET /health HTTP/1.1\r\nHost: stride\r\nX-Pad: " + b"a" * 40 + b"\r\n\r\n"
    # Sent whole, the header would take three times the header timeout.
    pause = 3 * stack_settings.api_client_header_timeout_s / len(header)
    with connect(stack_settings) as sock:
        for byte in header:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            if closed_by_server(sock, pause):  # the pause is the slow client's own pace
                break
        else:
            pytest.fail("nginx let a client take 3x the header timeout over its header")
    with httpx.Client(base_url=live_api) as client:  # and it serves the next client
        assert client.get("/health").status_code == 200


def test_a_client_that_stalls_its_body_is_cut_off(stack_settings: Settings, live_api: str) -> None:
    with connect(stack_settings) as sock:
        sock.sendall(
            b"POST /v1/get_score HTTP/1.1\r\nHost: stride\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        # readiness-style: waits until nginx gives up on the body, bounded well past it
        assert closed_by_server(sock, 5 * stack_settings.api_client_body_timeout_s)


def first_answers(socks: list[socket.socket], wait: float) -> list[bytes | None]:
    """What each connection gets first, read as it comes: its answer's first bytes, ``b""``
    when the server closes it without one, None when still open after ``wait`` seconds."""
    first: dict[socket.socket, bytes] = {}
    deadline = time.monotonic() + wait
    while len(first) < len(socks) and (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([s for s in socks if s not in first], [], [], left)
        for sock in readable:
            try:
                first[sock] = sock.recv(65536)
            except ConnectionResetError:
                first[sock] = b""
    return [first.get(sock) for sock in socks]


def test_slow_bodies_from_one_address_are_capped_then_cut_off(
    live_api: str, stack: Stack, stack_settings: Settings
) -> None:
    """The issue's attack: many slow bodies held open. One address gets at most
    ``api_max_connections_per_ip`` requests in progress, and each is cut at the timeout.
    (The ingest path, whose rate limit lets them all through.)"""
    limit = stack_settings.api_max_connections_per_ip
    n = limit + 8
    assert n < stack_settings.api_ingest_rate_limit_burst
    address = own_address()
    start = (
        b"POST /v1/events/batch HTTP/1.1\r\nHost: stride\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    socks = [connect(stack_settings, address) for _ in range(n)]
    try:
        for sock in socks:
            sock.sendall(start)
        answers = first_answers(socks, 5 * stack_settings.api_client_body_timeout_s)
    finally:
        for sock in socks:
            sock.close()
    refused = [a for a in answers if a and a.startswith(b"HTTP/1.1 429 ")]
    assert len(refused) == n - limit
    assert json.loads(refused[0].split(b"\r\n\r\n", 1)[1]) == nginx_error(429)
    assert answers.count(b"") == limit  # the others: held, then cut off without an answer
    assert f'limiting connections by zone "stride_conn", client: {address}' in (
        stack.log_file("proxy").read_text()
    )


# ---- body caps -------------------------------------------------------------------------


def test_wearable_json_uploads_in_progress_are_capped_per_address_and_in_all(
    live_api: str, stack_settings: Settings
) -> None:
    """Their bodies are parsed whole (~8x their size in the API's memory): one address
    holds at most WEARABLE_JSON_PER_IP of them in progress, every address together
    WEARABLE_JSON_IN_ALL; the next gets the JSON 429 at once, before its body is read."""
    from cli.proxy import WEARABLE_JSON_IN_ALL, WEARABLE_JSON_PER_IP

    start = (
        b"POST /v1/wearables/fitbit HTTP/1.1\r\nHost: stride\r\n"
        b"Authorization: Bearer not-checked-before-the-body\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n["
    )

    def held(address: str, n: int) -> list[socket.socket]:
        socks = [connect(stack_settings, address) for _ in range(n)]
        for sock in socks:
            sock.sendall(start)
        return socks

    one = own_address()
    socks = held(one, WEARABLE_JSON_PER_IP)
    try:
        with connect(stack_settings, one) as extra:
            extra.sendall(start)
            status, _headers, body = response(extra)
        assert (status, json.loads(body)) == (429, nginx_error(429))
        others = [own_address() for _ in range(WEARABLE_JSON_IN_ALL - WEARABLE_JSON_PER_IP)]
        socks += [sock for address in others for sock in held(address, 1)]
        with connect(stack_settings, own_address()) as beyond:  # a new address, all in use
            beyond.sendall(start)
            status, _headers, body = response(beyond)
        assert status == 429
        # the ones in progress were not refused: still waiting for their bodies
        assert first_answers(socks, 0.2) == [None] * len(socks)
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize(
    ("path", "cap"),
    [
        ("/v1/get_score", lambda s: s.api_max_body_bytes),
        ("/v1/events/batch", lambda _s: MAX_BATCH_BYTES),
        ("/v1/wearables/oura", lambda s: s.wearable_max_json_bytes),
    ],
    ids=["default", "batch", "wearable-json"],
)
def test_a_body_over_the_cap_gets_json_413_before_anyone_reads_it(
    live_api: str, stack_settings: Settings, path: str, cap
) -> None:
    with connect(stack_settings) as sock:
        # The header only: the answer comes without one byte of the body sent.
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: stride\r\nContent-Type: application/json\r\n"
            f"Content-Length: {cap(stack_settings) + 1}\r\n\r\n".encode()
        )
        status, headers, body = response(sock)
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == nginx_error(413)
    assert "x-request-id" not in headers  # nginx answered; the API never saw it


def test_a_body_at_the_cap_reaches_the_api(
    api_client: httpx.Client, stack_settings, db_engine: Engine
) -> None:
    """One event may be as large as the default cap (the API's own limit for it too)."""
    from core.identity.game_keys import create_game
    from core.platform.db import session_scope
    from tests.streaming_helpers import score_event

    with session_scope() as session:
        key = create_game(session, "Cap", game_id=f"cap-{uuid.uuid4().hex[:8]}").api_key
    body = json.dumps(score_event("cap-test", 1)).encode()
    body += b" " * (stack_settings.api_max_body_bytes - len(body))
    answer = api_client.post(
        "/v1/events",
        content=body,
        headers={"Content-Type": "application/json", "X-Api-Key": key},
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 1


@pytest.fixture(name="api_client")
def api_client_fixture(live_api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_api, timeout=30) as client:
        yield client


# ---- rate limits -----------------------------------------------------------------------


def at_once(settings: Settings, address: str, path: str, n: int) -> list[tuple[int, dict, bytes]]:
    """``n`` GETs from ``address`` that reach nginx together, whatever the API's speed: every
    connection is open before the first request is sent."""
    request = f"GET {path} HTTP/1.1\r\nHost: stride\r\nConnection: close\r\n\r\n".encode()
    sockets = [connect(settings, address) for _ in range(n)]
    try:
        for sock in sockets:
            sock.sendall(request)
        return [
            (status, {k.lower(): v for k, v in headers.items()}, body)
            for status, headers, body in map(response, sockets)
        ]
    finally:
        for sock in sockets:
            sock.close()


def test_a_burst_over_the_per_ip_limit_gets_json_429_with_retry_after(
    live_api: str, stack_settings: Settings
) -> None:
    burst = stack_settings.api_rate_limit_burst
    n = burst + 20  # below the limit on requests in progress
    assert n < stack_settings.api_max_connections_per_ip
    answers = at_once(stack_settings, own_address(), "/v1/leaderboards", n)
    statuses = [status for status, _h, _b in answers]
    assert statuses.count(200) >= burst  # the burst is served at once
    refused = [(h, b) for status, h, b in answers if status == 429]
    assert refused, f"{n} reads at once from one address, none refused"
    assert len(refused) + statuses.count(200) == n
    for headers, body in refused:
        assert headers["content-type"] == "application/json"
        assert headers["retry-after"] == "1"
        assert json.loads(body) == nginx_error(429)
    assert all("retry-after" not in h for status, h, _b in answers if status == 200)


def test_the_sign_in_page_has_a_tighter_limit(live_api: str, stack_settings: Settings) -> None:
    n = 3 * stack_settings.api_login_rate_limit_burst
    answers = at_once(stack_settings, own_address(), "/admin/login", n)
    statuses = [status for status, _h, _b in answers]
    assert 200 in statuses and 429 in statuses
    assert all(json.loads(b) == nginx_error(429) for s, _h, b in answers if s == 429)


async def _burst(base: str, address: str, method: str, path: str, n: int, **kwargs):
    """``n`` requests from ``address``, 8 in flight."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=base, transport=transport, timeout=30) as client:

        async def one() -> httpx.Response:
            async with limit:
                return await client.request(method, path, **kwargs)

        return await asyncio.gather(*(one() for _ in range(n)))


def test_game_server_ingest_is_not_throttled(
    live_api: str, stack_settings: Settings, game: GameWithKey
) -> None:
    # Batches from one address, 8 in flight as bench/events_e2e.py posts them: more requests
    # than the public burst lets through, within the ingest burst, so whatever the speed.
    n = 3 * stack_settings.api_rate_limit_burst
    assert n <= stack_settings.api_ingest_rate_limit_burst
    body = {"events": [score_event(f"p{i}", i) for i in range(20)]}
    answers = asyncio.run(
        _burst(
            live_api,
            own_address(),
            "POST",
            "/v1/events/batch",
            n,
            json=body,
            headers={"X-Api-Key": game.api_key},
        )
    )
    assert [a.status_code for a in answers] == [202] * n


# ---- the client address the API sees -----------------------------------------------------


def _sign_in_attempts(engine: Engine, username: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT client_ip FROM admin_login_attempts WHERE username = :u ORDER BY id"),
                {"u": username},
            ).scalars()
        )


def test_a_forged_forwarded_for_is_not_trusted(live_api: str, db_engine: Engine) -> None:
    username = f"xff-{uuid.uuid4().hex[:8]}"
    elsewhere = own_address()
    forged = {"X-Forwarded-For": "203.0.113.9, 198.51.100.1"}
    for address in ("127.0.0.1", elsewhere):
        with client_from(live_api, address) as client:
            failed = client.post(
                "/admin/login", data={"username": username, "password": "wrong"}, headers=forged
            )
        assert failed.status_code == 400, failed.text
    # The sign-in throttle counted each failure against the real peer.
    assert _sign_in_attempts(db_engine, username) == ["127.0.0.1", elsewhere]


def test_the_api_own_429_passes_unchanged(live_api: str, stack_settings: Settings) -> None:
    """The sign-in throttle's lockout keeps its page and its Retry-After, not nginx's."""
    username = f"lock-{uuid.uuid4().hex[:8]}"
    with client_from(live_api, own_address()) as client:
        for _ in range(stack_settings.admin_login_max_failures_per_username + 1):
            refused = client.post("/admin/login", data={"username": username, "password": "x"})
    assert refused.status_code == 429
    (retry_after,) = refused.headers.get_list("retry-after")  # one, the API's: minutes
    assert int(retry_after) > stack_settings.admin_login_lockout_s - 60
    assert 'name="password"' in refused.text  # the login page, not nginx's JSON


def test_uvicorn_trusts_forwarded_for_only_on_its_private_socket(
    live_api: str, stack_settings: Settings, db_engine: Engine
) -> None:
    """uvicorn sees no address for a Unix socket peer and trusts the header from every peer
    (``--forwarded-allow-ips '*'``): that is safe only because nginx overwrites it and no one
    else can reach the socket."""
    sock = upstream_socket(stack_settings)
    assert sock.is_socket()
    assert not sock.parent.stat().st_mode & 0o007  # no access for others
    username = f"uds-{uuid.uuid4().hex[:8]}"
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://api") as c:
        c.post(
            "/admin/login",
            data={"username": username, "password": "wrong"},
            headers={"X-Forwarded-For": "198.51.100.4"},
        )
    assert _sign_in_attempts(db_engine, username) == ["198.51.100.4"]


def _process_group(leader: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == leader:
                members.append(int(entry.name))
    return members


def _socket_inodes(pids: list[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def _listening_tcp_sockets() -> dict[str, tuple[str, int]]:
    """inode -> (local address, port) of every listening TCP socket (IPv4 in dotted form)."""
    sockets = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                address, port = fields[1].split(":")
                if len(address) == 8:  # IPv4, little-endian hex
                    address = ".".join(str(b) for b in reversed(bytes.fromhex(address)))
                sockets[fields[9]] = (address, int(port, 16))
    return sockets


def test_uvicorn_listens_on_no_tcp_port(live_api: str, stack: Stack) -> None:
    """The API is reached only through nginx: its one TCP listener is its Prometheus
    endpoint, on loopback."""
    api, door = stack.pid("api"), stack.pid("proxy")
    assert api and door, "both running, as the supervisor sees them"
    listening = _listening_tcp_sockets()
    assert _socket_inodes(_process_group(door)) & listening.keys()  # nginx: the public port
    api_listeners = {listening[i] for i in _socket_inodes(_process_group(api)) & listening.keys()}
    assert api_listeners <= {("127.0.0.1", stack.settings.api_metrics_port)}


# ---- headers and errors ----------------------------------------------------------------


def test_security_headers_on_every_answer_and_never_doubled(live_api: str) -> None:
    with httpx.Client(base_url=live_api) as client:
        answers = [
            client.get("/health"),  # the API
            client.get("/admin/login"),  # the admin panel sets its own
            client.get("/v1/leaderboards/no-such-board"),  # an API error
            client.post("/v1/get_score", content=b"x" * (1 << 20)),  # nginx's own 413
        ]
    assert [a.status_code for a in answers] == [200, 200, 404, 413]
    for answer in answers:
        assert answer.headers.get_list("x-content-type-options") == ["nosniff"]
        assert answer.headers.get_list("x-frame-options") == ["DENY"]
        assert answer.headers.get_list("referrer-policy") == ["same-origin"]
        assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"
        assert answer.headers["server"] == "nginx"  # no version


def test_the_request_id_passes_through(live_api: str) -> None:
    request_id = str(uuid.uuid4())
    with httpx.Client(base_url=live_api) as client:
        answer = client.get("/health", headers={"X-Request-ID": request_id})
    assert answer.headers["x-request-id"] == request_id


def test_with_the_api_down_the_front_door_answers_json_502() -> None:
    state = Path(tempfile.mkdtemp(prefix="stride-door-"))
    state.chmod(0o755)
    settings = Settings(state_dir=state, api_port=free_port())
    alone = dataclasses.replace(  # nginx without the API behind it
        PROXY,
        depends_on=(),
        probe=lambda s: "not listening" if port_is_free(s.api_host, s.api_port) else None,
    )
    stack = Stack(settings, [alone])
    try:
        stack.up(report=lambda _m: None)
        with httpx.Client(base_url=settings.api_url) as client:
            answer = client.get("/v1/leaderboards")
    finally:
        stack.down(report=lambda _m: None)
        shutil.rmtree(state)
    assert answer.status_code == 502
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["retry-after"] == "5"
    assert answer.json() == nginx_error(502)
