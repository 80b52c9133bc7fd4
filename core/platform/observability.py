"""What every process shares to be watched: its loopback metrics endpoint and its JSON logs.

Metrics: a process with several workers (uvicorn ``--workers``, the Faust worker processes)
uses prometheus-client's multiprocess mode: each worker writes its samples to files under
``PROMETHEUS_MULTIPROC_DIR`` (set by the supervisor, emptied before the start) and one
endpoint sums them, so a scrape sees the whole service whichever worker answers.

Logs: one JSON object per line, with the request id of the API request that caused it. The
API puts the id in a context variable and in the ``x-request-id`` header of every Kafka
record it produces; the stream pipeline logs the ids of each batch it writes, so one
event's id is found in the API's log and in the worker's.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

REQUEST_ID_HEADER = "x-request-id"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has: anything else was passed with ``extra=`` and is logged.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def logging_dict_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` that sends every logger (uvicorn's too) to stderr, as
    JSON (``log_format="json"``) or plain text."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if log_format == "json"
        else {"format": "[%(asctime)s] %(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"stride": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "stride",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def reset_multiprocess_dir(path: Path) -> None:
    """Empty the multiprocess metrics folder before a service starts (stale worker files
    would be summed forever)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


def serve_metrics(host: str, port: int) -> bool:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread of this process: the sum of
    every worker's samples in multiprocess mode, else this process's registry. Returns
    False when the port is taken: another worker of the same service already serves it."""
    registry: CollectorRegistry | None = None
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    try:
        if registry is None:
            start_http_server(port, addr=host)
        else:
            start_http_server(port, addr=host, registry=registry)
    except OSError:
        return False
    return True


def mark_process_dead(pid: int) -> None:
    """Forget a finished worker's live gauges (its counters stay summed)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def bounded(values: Iterable[str], limit: int) -> tuple[list[str], int]:
    """The distinct values in first-seen order, at most ``limit`` of them, and how many other
    distinct values there were (a log line stays small however large the batch)."""
    kept: dict[str, None] = {}
    others: set[str] = set()
    for value in values:
        if value in kept:
            continue
        if len(kept) < limit:
            kept[value] = None
        else:
            others.add(value)
    return list(kept), len(others)
