"""The SSRF guard resolves a host once and connects to the address it vetted (DNS rebinding)."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from core.chain import metadata
from core.platform.config import ChainSettings


class _Handler(BaseHTTPRequestHandler):
    seen_hosts: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Handler.seen_hosts.append(self.headers.get("Host", ""))
        body = json.dumps({"name": "Pinned"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_pinned_url_keeps_the_host_header_and_the_tls_name() -> None:
    url, headers, extensions = metadata.pinned(
        "https://nft.example:8443/a/1.json?x=1", "93.184.216.34"
    )
    assert url == "https://93.184.216.34:8443/a/1.json?x=1"
    assert headers == {"Host": "nft.example:8443"}
    assert extensions == {"sni_hostname": "nft.example"}
    url, headers, _ = metadata.pinned("http://nft.example/1", "2606:2800:220:1::1")
    assert url == "http://[2606:2800:220:1::1]/1" and headers == {"Host": "nft.example"}


def test_a_host_resolving_to_any_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0)) for a in ("8.8.8.8", "10.0.0.7")]
    monkeypatch.setattr(metadata.socket, "getaddrinfo", lambda *_a, **_k: answers)
    assert metadata.vet_host("mixed.example") == (
        None,
        "mixed.example resolves to the non-public address 10.0.0.7",
    )


def test_a_rebinding_resolver_cannot_steer_the_connection(
    monkeypatch: pytest.MonkeyPatch, server: int
) -> None:
    """The first answer is vetted (here loopback counts as public for the test); every later
    answer points elsewhere. Without pinning the client would resolve again and fail to
    connect to the second address."""
    real = socket.getaddrinfo
    calls: list[str] = []

    def rebinding(host: str, *args: object, **kwargs: object) -> list:
        if host != "rebind.example":
            return real(host, *args, **kwargs)  # type: ignore[arg-type]
        calls.append(host)
        address = "127.0.0.1" if len(calls) == 1 else "127.0.0.2"  # nothing listens there
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 0))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(metadata, "is_public", lambda a: a == ipaddress.ip_address("127.0.0.1"))
    settings = ChainSettings(nft_metadata_allow_private=False)
    body, content_type = metadata.fetch(f"http://rebind.example:{server}/1.json", settings)
    assert json.loads(body) == {"name": "Pinned"}
    assert content_type == "application/json"
    assert calls == ["rebind.example"]  # resolved once, by the guard
    assert _Handler.seen_hosts[-1] == f"rebind.example:{server}"
