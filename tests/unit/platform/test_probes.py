"""Readiness probes against things that are not what they should be."""

import socket
import threading

from cli.stack import free_port
from core.platform.probes import kafka_problem, postgres_problem


def test_kafka_probe_names_a_closed_port() -> None:
    port = free_port()
    problem = kafka_problem(f"127.0.0.1:{port}", timeout=0.5)
    assert problem is not None
    assert problem.startswith("Kafka unreachable")
    assert str(port) in problem


def test_kafka_probe_rejects_a_server_that_is_not_kafka() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def answer_garbage() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    problem = kafka_problem(f"127.0.0.1:{port}", timeout=1)
    thread.join(timeout=2)
    server.close()
    assert problem is not None and "not a Kafka broker" in problem


def test_postgres_probe_reports_the_reason() -> None:
    problem = postgres_problem(f"host=127.0.0.1 port={free_port()} user=x password=y dbname=z")
    assert problem is not None and problem.startswith("PostgreSQL unreachable")
