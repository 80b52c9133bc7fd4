"""Resources per environment: where Spark, the lake and the warehouse are.

``local``/``test``: the stack's Spark Connect server (Spark 4.1 + Delta 4.3), the lake
folder under the state dir (or an ``s3a://`` lake, see ``STRIDE_LAKE_S3_*``) and the
``warehouse`` PostgreSQL database. ``prod``: a Spark Connect URL, an ``s3://`` lake and
Redshift. Only settings differ; the asset code is the same.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pyspark.sql import SparkSession

from core.lake.bronze import VACUUM_RETENTION_HOURS
from core.platform.config import Settings, get_settings
from core.warehouse.load import PostgresWarehouse, RedshiftWarehouse, Warehouse
from spark_jobs.session import spark_session


class SparkConnect(dg.ConfigurableResource):
    """A Spark Connect endpoint (``sc://host:port``)."""

    url: str

    def session(self) -> SparkSession:
        return spark_session(self.url)


class Lake(dg.ConfigurableResource):
    """The Delta lake root: a local folder or an ``s3://`` / ``s3a://`` URI, and how long
    lake maintenance keeps the files it removed from a table."""

    root: str
    vacuum_retention_hours: int = VACUUM_RETENTION_HOURS


class WarehouseTarget(dg.ConfigurableResource):
    """Where gold is loaded: the local PostgreSQL ``warehouse`` database or Redshift."""

    kind: str
    url: str
    iam_role: str = ""
    pseudonym_key: str

    def warehouse(self) -> Warehouse:
        if self.kind == "redshift":
            import psycopg  # Redshift speaks the PostgreSQL wire protocol for these statements

            return RedshiftWarehouse(
                connect=lambda: psycopg.connect(self.url), iam_role=self.iam_role
            )
        return PostgresWarehouse(self.url)


def resources_for(settings: Settings) -> dict[str, Any]:
    """The resources of ``settings.env`` (prod requires its URLs and secrets to be set)."""
    if settings.env == "prod":
        missing = [
            name
            for name, value in (
                ("STRIDE_SPARK_REMOTE", settings.spark_remote),
                ("STRIDE_LAKE_URI", settings.lake_uri),
                ("STRIDE_WAREHOUSE_URL", settings.warehouse_url),
                ("STRIDE_REDSHIFT_IAM_ROLE", settings.redshift_iam_role),
            )
            if not value
        ]
        if missing and settings.warehouse_kind == "redshift":
            raise RuntimeError(f"production lakehouse needs {', '.join(missing)}")
    return {
        "spark": SparkConnect(url=settings.spark_url),
        "lake": Lake(
            root=settings.lake_root, vacuum_retention_hours=settings.lake_vacuum_retention_hours
        ),
        "warehouse": WarehouseTarget(
            kind=settings.warehouse_kind,
            url=settings.warehouse_db_url.replace("postgresql+psycopg://", "postgresql://", 1),
            iam_role=settings.redshift_iam_role or "",
            pseudonym_key=settings.pseudonym_key,
        ),
    }


def current_resources() -> dict[str, Any]:
    return resources_for(get_settings())
