"""The ``spark`` service of the local stack: a Spark Connect server for the lakehouse jobs."""

from __future__ import annotations

import sys

from cli.stack import Service
from core.config import Settings


def _spark_problem(settings: Settings) -> str | None:
    from spark_jobs.session import spark_problem

    return spark_problem(settings.spark_host, settings.spark_port)


SPARK = Service(
    name="spark",
    description="pysail Spark Connect server (Delta lake jobs)",
    command=lambda s: [
        sys.executable,
        "-m",
        "pysail",
        "spark",
        "server",
        "--ip",
        s.spark_host,
        "--port",
        str(s.spark_port),
    ],
    probe=_spark_problem,
    url=lambda s: s.spark_url,
    port=lambda s: s.spark_port,
    env=lambda _s: {"RUST_LOG": "warn"},
)
