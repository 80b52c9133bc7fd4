"""The warehouse adapter: gold day → staged Parquet under the lake → COPY into the warehouse.

Only gold aggregates leave the lake; user ids are replaced by a keyed hash
(HMAC-SHA256 with ``Settings.pseudonym_key``), so analysts can join a user's days without
learning who the user is. Each load replaces one day of one table in one transaction
(DELETE that day, then COPY), so reloading a day is idempotent.

* **PostgreSQL** (local): ``COPY ... FROM STDIN`` through psycopg 3, fed from the staged file.
* **Redshift** (production): ``COPY ... FROM 's3://<stage>' IAM_ROLE '...' FORMAT AS PARQUET``.
  Redshift maps Parquet columns by position, so every staged file has exactly the table's
  columns in the table's order.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg import sql

from core.lake.bronze import (
    GOLD_GAME_DAILY,
    GOLD_USER_DAILY_HEALTH,
    WAREHOUSE_STAGE,
    arrow_filesystem,
    is_s3,
    storage_options,
    table_uri,
)


@dataclass(frozen=True)
class Column:
    name: str
    postgres: str
    redshift: str
    arrow: pa.DataType


@dataclass(frozen=True)
class WarehouseTable:
    """One warehouse table, loaded from one gold table, one day at a time."""

    name: str
    gold_table: str
    columns: tuple[Column, ...]
    grain: tuple[str, ...]
    distkey: str
    sortkey: tuple[str, ...]
    pseudonymize: dict[str, str]  # gold column holding a user id → warehouse column

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(c.name, c.arrow) for c in self.columns])


_TOKENS = pa.decimal128(38, 18)
_LOADED_AT = Column("loaded_at", "TIMESTAMPTZ NOT NULL", "TIMESTAMP NOT NULL", pa.timestamp("us"))

USER_DAILY_HEALTH = WarehouseTable(
    name="user_daily_health",
    gold_table=GOLD_USER_DAILY_HEALTH,
    columns=(
        Column("date", "DATE NOT NULL", "DATE NOT NULL", pa.date32()),
        Column("user_key", "CHAR(64) NOT NULL", "CHAR(64) NOT NULL", pa.string()),
        Column("steps", "BIGINT", "BIGINT", pa.int64()),
        Column("resting_heart_rate", "DOUBLE PRECISION", "DOUBLE PRECISION", pa.float64()),
        Column("sleep_minutes", "DOUBLE PRECISION", "DOUBLE PRECISION", pa.float64()),
        Column("sample_count", "BIGINT NOT NULL", "BIGINT NOT NULL", pa.int64()),
        _LOADED_AT,
    ),
    grain=("date", "user_key"),
    distkey="user_key",
    sortkey=("date",),
    pseudonymize={"user_id": "user_key"},
)

GAME_DAILY = WarehouseTable(
    name="game_daily",
    gold_table=GOLD_GAME_DAILY,
    columns=(
        Column("date", "DATE NOT NULL", "DATE NOT NULL", pa.date32()),
        Column("game_id", "VARCHAR(64) NOT NULL", "VARCHAR(64) NOT NULL", pa.string()),
        Column("events", "BIGINT NOT NULL", "BIGINT NOT NULL", pa.int64()),
        Column("sessions", "BIGINT NOT NULL", "BIGINT NOT NULL", pa.int64()),
        Column("matches", "BIGINT NOT NULL", "BIGINT NOT NULL", pa.int64()),
        Column("active_players", "BIGINT NOT NULL", "BIGINT NOT NULL", pa.int64()),
        Column("tokens_minted", "NUMERIC(38,18) NOT NULL", "NUMERIC(38,18) NOT NULL", _TOKENS),
        Column("tokens_burned", "NUMERIC(38,18) NOT NULL", "NUMERIC(38,18) NOT NULL", _TOKENS),
        _LOADED_AT,
    ),
    grain=("date", "game_id"),
    distkey="game_id",
    sortkey=("date", "game_id"),
    pseudonymize={},
)

WAREHOUSE_TABLES = {t.name: t for t in (USER_DAILY_HEALTH, GAME_DAILY)}


def pseudonym(user_id: str, key: str) -> str:
    """HMAC-SHA256 of the user id (hex): stable per key, not reversible without it."""
    return hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def warehouse_rows(
    table: WarehouseTable, gold: pa.Table, pseudonym_key: str, loaded_at: datetime
) -> pa.Table:
    """Gold rows in the warehouse's shape: user ids pseudonymized, columns in table order."""
    columns: dict[str, Any] = {}
    for name in gold.column_names:
        if name in table.pseudonymize:
            ids = gold.column(name).to_pylist()
            columns[table.pseudonymize[name]] = [pseudonym(i, pseudonym_key) for i in ids]
        else:
            columns[name] = gold.column(name)
    columns["loaded_at"] = pa.array(
        [loaded_at.astimezone(UTC).replace(tzinfo=None)] * gold.num_rows, pa.timestamp("us")
    )
    ordered = [
        pc.cast(
            pa.array(columns[c.name]) if isinstance(columns[c.name], list) else columns[c.name],
            c.arrow,
        )
        for c in table.columns
    ]
    return pa.Table.from_arrays(ordered, schema=table.arrow_schema)


def read_gold_day(lake_root: str, table: WarehouseTable, day: date) -> pa.Table:
    """The gold rows of one day (empty when the table or the day does not exist)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    uri = table_uri(lake_root, table.gold_table)
    try:
        dt = DeltaTable(uri, storage_options=storage_options(uri))
    except TableNotFoundError:
        return pa.table({})
    data = dt.to_pyarrow_table(partitions=[("date", "=", day.isoformat())])
    if "date" not in data.column_names:
        data = data.append_column("date", pa.array([day] * data.num_rows, pa.date32()))
    return data


def stage_prefix(lake_root: str, table: WarehouseTable, day: date) -> str:
    """Folder of the staged Parquet of one day (ends with a slash)."""
    return f"{table_uri(lake_root, WAREHOUSE_STAGE)}/{table.name}/date={day.isoformat()}/"


def stage(lake_root: str, table: WarehouseTable, day: date, rows: pa.Table) -> str:
    """Write ``rows`` as the only Parquet file of the day's stage folder; returns its URI
    (``s3://...`` on an S3 lake, what Redshift's COPY takes; a local path otherwise)."""
    filesystem, root = arrow_filesystem(lake_root)
    folder = f"{root}/{WAREHOUSE_STAGE}/{table.name}/date={day.isoformat()}"
    filesystem.create_dir(folder, recursive=True)
    for info in filesystem.get_file_info(_selector(folder)):
        filesystem.delete_file(info.path)
    path = f"{folder}/part-00000.parquet"
    pq.write_table(rows, path, filesystem=filesystem)
    return f"s3://{path}" if is_s3(lake_root) else path


def read_staged(staged: str) -> pa.Table:
    """The staged file back (from S3 through the lake's endpoint and credentials)."""
    if staged.startswith("s3://"):
        filesystem, _ = arrow_filesystem(staged)
        return pq.read_table(staged.removeprefix("s3://"), filesystem=filesystem)
    return pq.read_table(staged)


def _selector(folder: str) -> Any:
    from pyarrow import fs

    return fs.FileSelector(folder, allow_not_found=True)


# ---- SQL ---------------------------------------------------------------------------------


def postgres_ddl(table: WarehouseTable) -> str:
    columns = ",\n  ".join(f"{c.name} {c.postgres}" for c in table.columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {table.name} (\n  {columns},\n"
        f"  PRIMARY KEY ({', '.join(table.grain)})\n)"
    )


def redshift_ddl(table: WarehouseTable) -> str:
    columns = ",\n  ".join(f"{c.name} {c.redshift}" for c in table.columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {table.name} (\n  {columns},\n"
        f"  PRIMARY KEY ({', '.join(table.grain)})\n)\n"
        f"DISTSTYLE KEY\nDISTKEY ({table.distkey})\n"
        f"COMPOUND SORTKEY ({', '.join(table.sortkey)})"
    )


def _quote(literal: str) -> str:
    return "'" + literal.replace("'", "''") + "'"


def redshift_load_statements(
    table: WarehouseTable, day: date, s3_prefix: str, iam_role: str
) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements (SQL, parameters) that replace one day in Redshift, in one transaction.

    COPY takes no bind parameters, so its S3 prefix and role are validated and quoted here.
    """
    if not s3_prefix.startswith("s3://"):
        raise ValueError(f"Redshift loads from S3: stage prefix {s3_prefix!r} is not s3://")
    if not iam_role.startswith("arn:aws:iam::"):
        raise ValueError(f"IAM role {iam_role!r} must be an ARN (arn:aws:iam::<account>:role/...)")
    copy = (
        f"COPY {table.name} FROM {_quote(s3_prefix)} IAM_ROLE {_quote(iam_role)} FORMAT AS PARQUET"
    )
    return [(f"DELETE FROM {table.name} WHERE date = %s", (day,)), (copy, ())]  # noqa: S608


# ---- loaders -------------------------------------------------------------------------------


class Warehouse(Protocol):
    def load_day(self, table: WarehouseTable, day: date, staged: str, rows: pa.Table) -> int: ...


@dataclass
class PostgresWarehouse:
    """The local stand-in: the ``warehouse`` database of the stack's PostgreSQL."""

    dsn: str

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn.replace("postgresql+psycopg://", "postgresql://", 1))

    def load_day(self, table: WarehouseTable, day: date, staged: str, rows: pa.Table) -> int:
        """Replace the day with the staged file's rows (one transaction); returns rows loaded."""
        del rows  # the staged file is the source of truth, as it is for Redshift
        data = read_staged(staged)
        names = sql.SQL(", ").join(sql.Identifier(n) for n in table.column_names)
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(postgres_ddl(table).encode())
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE date = %s").format(sql.Identifier(table.name)),
                (day,),
            )
            copy = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table.name), names)
            with cur.copy(copy) as out:
                for batch in data.to_batches(max_chunksize=50_000):
                    for row in zip(*(col.to_pylist() for col in batch.columns), strict=True):
                        out.write_row(row)
        return data.num_rows

    def count_day(self, table: WarehouseTable, day: date) -> int:
        with self.connect() as conn:
            exists = conn.execute("SELECT to_regclass(%s)", (table.name,)).fetchone()
            if not exists or exists[0] is None:
                return 0
            query = sql.SQL("SELECT count(*) FROM {} WHERE date = %s").format(
                sql.Identifier(table.name)
            )
            row = conn.execute(query, (day,)).fetchone()
        return int(row[0]) if row else 0


@dataclass
class RedshiftWarehouse:
    """Production: the same staged files, loaded with Redshift's S3 COPY."""

    connect: Callable[[], Any]  # a DB-API connection to Redshift (redshift_connector, psycopg)
    iam_role: str

    def load_day(self, table: WarehouseTable, day: date, staged: str, rows: pa.Table) -> int:
        prefix = staged.rsplit("/", 1)[0] + "/"
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute(redshift_ddl(table))
            for statement, params in redshift_load_statements(table, day, prefix, self.iam_role):
                cur.execute(statement, params or None)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()
        return rows.num_rows


def load_gold_day(
    lake_root: str,
    warehouse: Warehouse,
    table: WarehouseTable,
    day: date,
    pseudonym_key: str,
    loaded_at: datetime | None = None,
) -> int:
    """Gold day → stage → warehouse; returns the number of rows the day now has."""
    gold = read_gold_day(lake_root, table, day)
    if gold.num_rows == 0:
        rows = table.arrow_schema.empty_table()
    else:
        rows = warehouse_rows(table, gold, pseudonym_key, loaded_at or datetime.now(UTC))
    staged = stage(lake_root, table, day, rows)
    return warehouse.load_day(table, day, staged, rows)
