"""The local webhook receiver: records every notification Alertmanager delivers.

A stand-in for subscribers' endpoints in the local stack (``stride up webhooks``), for the
tests and the demo: ``POST /<any path>`` with a JSON body is recorded (path, time, body) in
memory and appended to ``<state>/webhooks/notifications.jsonl``; ``GET /notifications``
answers them all (``?path=/x`` only those of one path); ``GET /health`` answers 200.
Loopback only, standard library only.
"""

from __future__ import annotations

import argparse
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 1 << 20


class _Recorder:
    def __init__(self, log_path: Path) -> None:
        self.lock = threading.Lock()
        self.items: list[dict[str, Any]] = []
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, path: str, body: Any) -> None:
        item = {"path": path, "received_at": datetime.now(UTC).isoformat(), "body": body}
        with self.lock:
            self.items.append(item)
            with self.log_path.open("a") as fh:
                fh.write(json.dumps(item) + "\n")


def _handler(recorder: _Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/health":
                self._answer(200, {"status": "ok"})
            elif url.path == "/notifications":
                wanted = parse_qs(url.query).get("path")
                with recorder.lock:
                    items = [i for i in recorder.items if not wanted or i["path"] in wanted]
                self._answer(200, items)
            else:
                self._answer(404, {"detail": "GET /notifications or /health"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(413, {"detail": "body over 1 MiB"})
                return
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                self._answer(400, {"detail": "the body is not JSON"})
                return
            recorder.record(urlsplit(self.path).path, body)
            self._answer(200, {"recorded": True})

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per notification is in the JSONL file

    return Handler


def serve(port: int, log_path: Path) -> ThreadingHTTPServer:
    """A started server (in a thread) on 127.0.0.1:``port``; ``shutdown()`` stops it."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(_Recorder(log_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:  # pragma: no cover - the service's entry point
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(_Recorder(args.log)))
    import signal

    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


if __name__ == "__main__":
    main()
