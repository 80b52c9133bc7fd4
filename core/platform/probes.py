"""Readiness probes shared by the API (/ready) and the local supervisor.

Each probe returns ``None`` when the dependency answers and a short human reason when not.
"""

from __future__ import annotations

import socket
import ssl
import struct

import psycopg

_API_VERSIONS = 18


def kafka_problem(
    bootstrap: str, timeout: float = 1.0, tls: ssl.SSLContext | None = None
) -> str | None:
    """Speak Kafka's ApiVersions (v0) to the first reachable bootstrap broker, inside TLS
    when ``tls`` is given (``kafka_security.tls_context_for_probe``; SASL brokers answer
    ApiVersions before authentication)."""
    errors = []
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout) as raw:
                sock = tls.wrap_socket(raw, server_hostname=host) if tls else raw
                sock.settimeout(timeout)
                client_id = b"stride-probe"
                body = struct.pack(">hhih", _API_VERSIONS, 0, 7, len(client_id)) + client_id
                sock.sendall(struct.pack(">i", len(body)) + body)
                header = _recv_exactly(sock, 10)
                _size, correlation_id, error_code = struct.unpack(">iih", header)
                if correlation_id != 7:
                    errors.append(f"{address}: not a Kafka broker (bad correlation id)")
                elif error_code != 0:
                    errors.append(f"{address}: broker answered error code {error_code}")
                else:
                    return None
        except (OSError, ValueError, struct.error) as exc:
            errors.append(f"{address}: {exc}")
    return "Kafka unreachable (" + "; ".join(errors) + ")"


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed by peer")
        data += chunk
    return data


def postgres_problem(dsn: str, timeout: float = 2.0) -> str | None:
    """Connect and run ``SELECT 1``; ``dsn`` is a libpq DSN or a postgresql:// URL."""
    dsn = dsn.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(dsn, connect_timeout=max(1, int(timeout))) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"PostgreSQL unreachable ({first_line})"
    return None


def http_problem(url: str, timeout: float = 1.0, uds: str | None = None) -> str | None:
    """GET ``url`` (over the Unix socket ``uds`` when given); any 2xx is healthy."""
    import httpx

    where = f"{url} on {uds}" if uds else url
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=uds), timeout=timeout) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        return f"{where} unreachable ({exc.__class__.__name__})"
    if response.is_success:
        return None
    return f"{where} answered {response.status_code}"
