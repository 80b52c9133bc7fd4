"""Settings for every Stride process, read once from the environment (prefix ``STRIDE_``).

Locally nothing needs to be set: ``stride up`` creates a private PostgreSQL cluster and
generates its passwords into ``<state_dir>/secrets.json`` (mode 0600, git-ignored).
In production every URL and secret comes from the environment or a ``.env`` file.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


class _Base(BaseSettings):
    """What every group shares: the env prefix, the mode, the state folder, local secrets."""

    model_config = SettingsConfigDict(
        env_prefix="STRIDE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["local", "test", "prod"] = "local"
    state_dir: Path = Field(default=REPO_ROOT / ".stride", description="pids, logs, data")

    # Secrets already read from state_dir/secrets.json, keyed by (state_dir, name).
    _secret_cache: dict[tuple[Path, str], str] = PrivateAttr(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return self.env in ("local", "test")

    def local_secret(self, name: str) -> str:
        """A generated secret of the local stack (created on first use, kept in state_dir)."""
        key = (self.state_dir, name)
        if key in self._secret_cache:
            return self._secret_cache[key]
        path = self.state_dir / "secrets.json"
        data: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        if name not in data:
            data[name] = secrets.token_urlsafe(24)
            self.state_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh, indent=2)
            tmp.replace(path)
        self._secret_cache[key] = data[name]
        return data[name]

    def _required_secret(self, value: SecretStr | None, variable: str, name: str) -> str:
        """``value`` when set; outside the local stack it must be; locally it is generated."""
        if value:
            return value.get_secret_value()
        if not self.is_local:
            raise RuntimeError(f"{variable} must be set outside the local stack")
        return self.local_secret(name)


class ApiSettings(_Base):
    """The HTTP API: its front door (nginx), uvicorn behind it, its credential caches.

    ``api_host:api_port`` is the public address, served by nginx (``cli/proxy.py``); uvicorn
    listens only on the Unix socket ``api_upstream_socket``. The ``api_*`` limits below are
    the front door's, per client IP or per credential (game key, app user token); the API
    enforces its own body caps behind it.
    """

    api_host: str = Field(default="127.0.0.1", description="the front door (nginx) listens here")
    api_port: int = 8000
    api_workers: int = Field(default=1, ge=1, description="uvicorn worker processes")
    game_key_cache_ttl_s: float = Field(default=30.0, ge=0, description="API key lookups")
    app_token_cache_ttl_s: float = Field(default=30.0, ge=0, description="app token lookups")
    api_game_key_rate_limit_per_s: int = Field(
        default=2000, ge=1, description="write requests/s per game key (events, get_score)"
    )
    api_game_key_rate_limit_burst: int = Field(
        default=4000, ge=0, description="write requests over that rate let through at once, per key"
    )
    api_user_rate_limit_per_min: int = Field(
        default=120, ge=1, description="write requests/minute per app user (uploads, get_score)"
    )
    api_user_rate_limit_burst: int = Field(
        default=60, ge=0, description="write requests over that rate let through at once, per user"
    )
    api_rate_limit_per_s: int = Field(
        default=50, ge=1, description="requests/s per client IP on every path but ingest, sign-in"
    )
    api_rate_limit_burst: int = Field(
        default=100, ge=0, description="requests over that rate let through at once, per IP"
    )
    api_ingest_rate_limit_per_s: int = Field(
        default=200, ge=1, description="POST /v1/events and /v1/events/batch, per client IP"
    )
    api_ingest_rate_limit_burst: int = Field(default=400, ge=0)
    api_login_rate_limit_per_min: int = Field(
        default=10, ge=1, description="/admin/login requests/minute per client IP"
    )
    api_login_rate_limit_burst: int = Field(default=10, ge=0)
    api_max_connections_per_ip: int = Field(
        default=128, ge=1, description="requests in progress at once per client IP"
    )
    api_client_header_timeout_s: float = Field(
        default=10.0, gt=0, description="a client sends its whole request header within this"
    )
    api_client_body_timeout_s: float = Field(
        default=20.0, gt=0, description="longest pause between two reads of a request body"
    )
    api_proxy_read_timeout_s: float = Field(
        default=60.0, gt=0, description="longest wait for the API's answer (reads, admin)"
    )
    api_upload_timeout_s: float = Field(
        default=900.0, gt=0, description="the same for wearable uploads (up to 1 GiB, parsed first)"
    )
    api_max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1,
        description="body cap of paths without a larger one of their own (one event, 64 KiB)",
    )

    @property
    def api_url(self) -> str:
        """The public URL: the front door."""
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def api_upstream_socket(self) -> Path:
        """uvicorn's Unix socket, which only nginx and this folder's owner can reach. When
        stride runs as root and nginx's workers cannot reach the state folder, the
        supervisor moves it (``cli.proxy.upstream_socket``)."""
        return self.state_dir / "proxy" / "api.sock"


class DatabaseSettings(_Base):
    """PostgreSQL: the local cluster the supervisor creates; production sets the URLs."""

    pg_host: str = "127.0.0.1"
    pg_port: int = 5433
    pg_os_user: str | None = Field(
        default=None, description="OS user that runs the local cluster when stride runs as root"
    )
    database_url: SecretStr | None = None
    readonly_database_url: SecretStr | None = None
    readonly_role: str = "stride_readonly"

    def _local_url(self, user: str, database: str) -> str:
        return (
            f"postgresql+psycopg://{user}:{self.local_secret(user + '_password')}"
            f"@{self.pg_host}:{self.pg_port}/{database}"
        )

    @property
    def db_url(self) -> str:
        """SQLAlchemy URL of the application database."""
        if self.database_url:
            return self.database_url.get_secret_value()
        return self._local_url("stride", "stride")

    @property
    def readonly_db_url(self) -> str:
        """URL of the read-only role used by the admin query page."""
        if self.readonly_database_url:
            return self.readonly_database_url.get_secret_value()
        return self._local_url(self.readonly_role, "stride")

    @property
    def superuser_dsn(self) -> str:
        """libpq DSN of the local cluster's superuser (local stack only)."""
        password = self.local_secret("postgres_password")
        return f"host={self.pg_host} port={self.pg_port} user=postgres password={password}"


class KafkaSettings(_Base):
    """The broker (the local one's process too) and the topics' shape."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_controller_port: int = Field(
        default=9094, description="the local broker's KRaft controller listener (127.0.0.1)"
    )
    kafka_heap_mb: int = Field(default=512, ge=128, description="the local broker's JVM heap")
    kafka_retention_hours: int = Field(
        default=168, ge=1, description="how long the local broker keeps records"
    )
    kafka_topic_partitions: int = Field(default=4, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1, description="3 in production")
    kafka_produce_timeout_s: float = Field(default=10.0, gt=0)
    # How every client authenticates (core/platform/kafka_security.py maps these to each
    # library's arguments). MSK as deployed by infra/ accepts only SASL_SSL + OAUTHBEARER
    # (IAM); SASL_PLAINTEXT is for brokers inside a trusted network (and the tests).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL"
    )
    kafka_sasl_mechanism: Literal["none", "SCRAM-SHA-512", "OAUTHBEARER"] = Field(
        default="none", description="none | SCRAM-SHA-512 | OAUTHBEARER (MSK IAM)"
    )
    kafka_sasl_username: str | None = Field(default=None, description="SCRAM-SHA-512 only")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SCRAM-SHA-512 only")
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="PEM CA bundle for SSL / SASL_SSL (default: the system's)"
    )
    kafka_msk_iam_region: str | None = Field(
        default=None, description="AWS region of the MSK cluster (OAUTHBEARER only)"
    )

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])

    @model_validator(mode="after")
    def _kafka_security_is_possible(self) -> KafkaSettings:
        problems = kafka_security_problems(
            self.kafka_security_protocol,
            self.kafka_sasl_mechanism,
            username=self.kafka_sasl_username,
            password=self.kafka_sasl_password,
            cafile=self.kafka_ssl_cafile,
            region=self.kafka_msk_iam_region,
        )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def kafka_security_problems(
    protocol: str,
    mechanism: str,
    *,
    username: str | None,
    password: SecretStr | None,
    cafile: Path | None,
    region: str | None,
) -> list[str]:
    """What is impossible in a Kafka security combination, in the variables' names."""
    problems = []
    sasl = protocol.startswith("SASL_")
    if sasl and mechanism == "none":
        problems.append(
            f"STRIDE_KAFKA_SECURITY_PROTOCOL={protocol} needs STRIDE_KAFKA_SASL_MECHANISM "
            "(SCRAM-SHA-512 or OAUTHBEARER)"
        )
    if not sasl and mechanism != "none":
        problems.append(
            f"STRIDE_KAFKA_SASL_MECHANISM={mechanism} needs STRIDE_KAFKA_SECURITY_PROTOCOL "
            f"SASL_SSL (or SASL_PLAINTEXT), not {protocol}"
        )
    if mechanism == "SCRAM-SHA-512" and not (username and password):
        problems.append(
            "STRIDE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 needs STRIDE_KAFKA_SASL_USERNAME "
            "and STRIDE_KAFKA_SASL_PASSWORD"
        )
    if mechanism != "SCRAM-SHA-512" and (username or password):
        problems.append(
            "STRIDE_KAFKA_SASL_USERNAME / STRIDE_KAFKA_SASL_PASSWORD are used only with "
            f"STRIDE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512, not {mechanism}"
        )
    if mechanism == "OAUTHBEARER":
        if not region:
            problems.append(
                "STRIDE_KAFKA_SASL_MECHANISM=OAUTHBEARER (MSK IAM) needs "
                "STRIDE_KAFKA_MSK_IAM_REGION (e.g. eu-west-1)"
            )
        if protocol != "SASL_SSL":
            problems.append(
                "STRIDE_KAFKA_SASL_MECHANISM=OAUTHBEARER (MSK IAM) needs "
                f"STRIDE_KAFKA_SECURITY_PROTOCOL=SASL_SSL, not {protocol}: the token must not "
                "travel in clear"
            )
    elif region:
        problems.append(
            "STRIDE_KAFKA_MSK_IAM_REGION is used only with STRIDE_KAFKA_SASL_MECHANISM=OAUTHBEARER"
        )
    if cafile is not None:
        if protocol not in ("SSL", "SASL_SSL"):
            problems.append(
                f"STRIDE_KAFKA_SSL_CAFILE is used only with SSL or SASL_SSL, not {protocol}"
            )
        elif not cafile.is_file():
            problems.append(f"STRIDE_KAFKA_SSL_CAFILE: no file {cafile}")
    return problems


class StreamsSettings(_Base):
    """The Faust workers: scoring agent and lake sink batches."""

    streams_app_id: str = Field(default="stride-streams", description="Faust app id = group id")
    streams_processes: int = Field(default=2, ge=1, description="Faust worker processes")
    streams_batch_size: int = Field(
        default=4000,
        ge=1,
        description="Events per scoring transaction (at most; a batch closes after BATCH_WITHIN_S)",
    )
    streams_batch_within_s: float = Field(default=0.2, gt=0)
    lake_sink_batch_size: int = Field(
        default=20000,
        ge=1,
        description="Rows per bronze commit (at most; a batch closes after BATCH_WITHIN_S)",
    )
    lake_sink_batch_within_s: float = Field(default=2.0, gt=0)


class EventSettings(_Base):
    """Game events: the plausible window of ``occurred_at`` (skew-corrected)."""

    events_earliest_occurred_at: date = Field(
        default=date(2000, 1, 1),
        description="events dated before this UTC day are refused (unset device clocks say 1970)",
    )
    events_max_ahead_s: int = Field(
        default=86_400, ge=0, description="how far after its receipt an event may be dated"
    )


class RewardSettings(_Base):
    """Play-to-earn rules (``core.rewards.commands.RewardRules``)."""

    reward_token: str = "STRIDE"  # noqa: S105 - the game token symbol, not a secret
    reward_mint_per_win: Decimal = Decimal("10")
    reward_mint_per_draw: Decimal = Decimal("0")
    reward_mint_per_achievement_point: Decimal = Decimal("0")
    purchase_payment_timeout_s: int = Field(
        default=1800,
        ge=60,
        description="a pack paid in the game token is released (stock back, payment_failed) "
        "when its burn is not authorized within this",
    )


class AdminSettings(_Base):
    """The admin panel, its sign-in throttle and its read-only query page."""

    secret_key: SecretStr | None = None
    query_statement_timeout_ms: int = 5000
    query_row_limit: int = 1000
    admin_login_max_failures_per_username: int = Field(
        default=5, ge=1, description="failed sign-ins per username within the window"
    )
    admin_login_max_failures_per_ip: int = Field(
        default=20, ge=1, description="failed sign-ins per client IP within the window"
    )
    admin_login_window_s: int = Field(
        default=900, ge=1, description="failed sign-ins count this long"
    )
    admin_login_lockout_s: int = Field(
        default=900, ge=1, description="sign-ins refused this long at a limit"
    )
    query_byte_limit: int = Field(
        default=5_000_000,
        ge=1,
        description="bytes of values a SQL page result shows (and its CSV holds) at most",
    )
    query_export_row_limit: int = Field(
        default=100_000,
        ge=1,
        description="rows the SQL page's full-result CSV download holds at most (streamed)",
    )
    query_export_timeout_s: int = Field(
        default=600,
        ge=1,
        description="the SQL page's full-result CSV download stops after this long in all",
    )
    admin_statement_timeout_ms: int = Field(
        default=5000,
        ge=1,
        description="each statement of the admin panel's list, detail and export pages stops after",
    )

    @property
    def session_secret(self) -> str:
        return self._required_secret(self.secret_key, "STRIDE_SECRET_KEY", "session_secret")


class LakeSettings(_Base):
    """The Delta lake: a local folder or S3 (the same endpoint for delta-rs and Spark S3A)."""

    lake_dir: Path | None = Field(default=None, description="local lake; default state_dir/lake")
    lake_uri: str | None = Field(
        default=None, description="s3://bucket/prefix or s3a://bucket/prefix in production"
    )
    lake_s3_endpoint: str | None = Field(
        default=None, description="S3 API URL for s3:// and s3a:// lakes (moto, MinIO); default AWS"
    )
    lake_s3_region: str = "us-east-1"
    lake_s3_access_key_id: SecretStr | None = Field(
        default=None, description="default: the AWS credential chain (env, profile, IAM role)"
    )
    lake_s3_secret_access_key: SecretStr | None = None
    lake_s3_path_style: bool | None = Field(
        default=None, description="bucket in the path, not the host; default: on with an endpoint"
    )
    lake_s3a_credentials_provider: str | None = Field(
        default=None, description="S3A fs.s3a.aws.credentials.provider; default its chain"
    )
    lake_first_day: date = Field(
        default=date(2026, 11, 1),
        description="first daily lakehouse partition (Dagster); bronze days before it are skipped",
    )
    lake_vacuum_retention_hours: int = Field(
        default=168,
        ge=168,
        description="lake vacuum (bronze, silver, gold) deletes removed files after (>= 7 days)",
    )

    @property
    def lake_root(self) -> str:
        """Root of the Delta lake: a local folder or an ``s3://`` URI."""
        if self.lake_uri:
            return self.lake_uri.rstrip("/")
        return str(self.lake_dir or self.state_dir / "lake")

    @property
    def lake_is_s3(self) -> bool:
        return self.lake_root.startswith(("s3://", "s3a://"))

    @property
    def lake_s3_uses_path_style(self) -> bool:
        if self.lake_s3_path_style is not None:
            return self.lake_s3_path_style
        return self.lake_s3_endpoint is not None

    @property
    def lake_s3_credentials_env(self) -> dict[str, str]:
        """AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY when set (for the Spark server's env)."""
        env = {}
        if self.lake_s3_access_key_id and self.lake_s3_secret_access_key:
            env["AWS_ACCESS_KEY_ID"] = self.lake_s3_access_key_id.get_secret_value()
            env["AWS_SECRET_ACCESS_KEY"] = self.lake_s3_secret_access_key.get_secret_value()
        return env

    @property
    def lake_storage_options(self) -> dict[str, str]:
        """delta-rs (object_store) options for an S3 lake: the same endpoint as Spark's S3A."""
        if not self.lake_is_s3:
            return {}
        options = {"AWS_REGION": self.lake_s3_region, **self.lake_s3_credentials_env}
        if self.lake_s3_endpoint:
            options["AWS_ENDPOINT_URL"] = self.lake_s3_endpoint
            if self.lake_s3_endpoint.startswith("http://"):
                options["AWS_ALLOW_HTTP"] = "true"
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = str(not self.lake_s3_uses_path_style).lower()
        return options

    @property
    def lake_s3a_conf(self) -> dict[str, str]:
        """``spark.hadoop.fs.s3a.*`` for the Spark server (credentials go by environment)."""
        conf = {
            "spark.hadoop.fs.s3a.endpoint.region": self.lake_s3_region,
            "spark.hadoop.fs.s3a.path.style.access": str(self.lake_s3_uses_path_style).lower(),
        }
        if self.lake_s3_endpoint:
            conf["spark.hadoop.fs.s3a.endpoint"] = self.lake_s3_endpoint
            if self.lake_s3_endpoint.startswith("http://"):
                conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = "false"
        if self.lake_s3a_credentials_provider:
            conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = (
                self.lake_s3a_credentials_provider
            )
        return conf


class ContentSettings(LakeSettings):
    """Game content: where asset versions are stored, upload limits and expiry.

    Versions live in the lake's raw zone by default (``<lake root>/raw/content``: a local
    folder, or the lake's bucket when the lake is on S3, with the lake's S3 endpoint and
    credentials); ``content_storage_uri`` moves them elsewhere (a folder or ``s3://``).
    """

    content_storage_uri: str | None = Field(
        default=None, description="folder or s3://bucket/prefix; default <lake root>/raw/content"
    )
    content_max_upload_bytes: int = Field(
        default=1 << 30, ge=1, description="largest asset version (tus Upload-Length)"
    )
    content_upload_expiry_s: float = Field(
        default=86400.0,
        gt=0,
        description="an incomplete upload expires this long after its last PATCH",
    )
    content_upload_max_parts: int = Field(
        default=10000, ge=1, description="PATCH requests (stored parts) one upload may take"
    )
    content_upload_cleanup_interval_s: float = Field(
        default=300.0, gt=0, description="the API sweeps expired uploads at most this often"
    )

    @property
    def content_root(self) -> str:
        """Root of the content store: a local folder or an ``s3://`` URI."""
        root = self.content_storage_uri or f"{self.lake_root}/raw/content"
        if root.startswith("s3a://"):
            root = "s3://" + root[len("s3a://") :]
        return root.rstrip("/")


class SparkSettings(_Base):
    """The Spark Connect server (local or remote) and Dagster's web server."""

    spark_host: str = "127.0.0.1"
    spark_port: int = 50051
    spark_remote: str | None = Field(default=None, description="sc://host:port in production")
    spark_memory: str = Field(default="2g", description="JVM heap of the local Spark server")
    spark_cores: int = Field(default=2, ge=1, description="local[N] task slots")
    spark_shuffle_partitions: int = Field(default=4, ge=1)
    spark_ui_port: int = Field(default=0, ge=0, description="Spark web UI on 127.0.0.1; 0: off")
    spark_mode: Literal["connect", "emr-serverless"] = Field(
        default="connect",
        description="how silver/gold steps run: Spark Connect in Dagster's process, or EMR "
        "Serverless job runs through Dagster Pipes (docs/lakehouse.md)",
    )
    spark_emr_application_id: str | None = Field(
        default=None, description="EMR Serverless application id (emr-serverless mode)"
    )
    spark_emr_job_role_arn: str | None = Field(
        default=None, description="the job runs' execution role ARN (emr-serverless mode)"
    )
    spark_emr_entry_point: str | None = Field(
        default=None, description="s3:// URI of spark_jobs/entry.py (the deploy uploads it)"
    )
    spark_emr_py_files: str | None = Field(
        default=None, description="s3:// URI of the code bundle (spark_jobs, core) for --py-files"
    )
    spark_emr_python_archive: str | None = Field(
        default=None,
        description="s3:// URI of the packed Python 3.11 environment (dagster-pipes, pyarrow); "
        "default: the release's own Python",
    )
    spark_emr_log_uri: str | None = Field(
        default=None, description="s3:// prefix for the job runs' logs (optional)"
    )
    spark_emr_log_group: str = Field(
        default="/aws/emr-serverless",
        description="CloudWatch log group of the job runs (Pipes reads the driver's stdout)",
    )
    spark_emr_delta_jars: str = Field(
        default="/usr/share/aws/delta/lib/delta-spark.jar,/usr/share/aws/delta/lib/delta-storage.jar",
        description="the Delta Lake jars of the EMR release (spark.jars)",
    )
    spark_emr_timeout_minutes: int = Field(
        default=120, ge=5, description="a job run is stopped after this long"
    )
    dagster_port: int = 3000

    @property
    def spark_url(self) -> str:
        return self.spark_remote or f"sc://{self.spark_host}:{self.spark_port}"


class WarehouseSettings(DatabaseSettings):
    """The warehouse: PostgreSQL locally (a database of the local cluster), or Redshift."""

    warehouse_url: SecretStr | None = None
    warehouse_kind: Literal["postgres", "redshift"] = "postgres"
    redshift_iam_role: str | None = None
    warehouse_pseudonym_key: SecretStr | None = None

    @property
    def warehouse_db_url(self) -> str:
        if self.warehouse_url:
            return self.warehouse_url.get_secret_value()
        return self._local_url("stride", "warehouse")

    @property
    def pseudonym_key(self) -> str:
        """Key of the HMAC that pseudonymizes user ids in the warehouse."""
        return self._required_secret(
            self.warehouse_pseudonym_key,
            "STRIDE_WAREHOUSE_PSEUDONYM_KEY",
            "warehouse_pseudonym_key",
        )


# Multipart boundaries and part headers around an uploaded file: the API and its front door
# accept an upload's limit plus this much of framing.
MULTIPART_ENVELOPE_BYTES = 64 * 1024


class WearableSettings(_Base):
    """Wearable ingest: upload limits and produce chunking."""

    wearable_max_upload_bytes: int = Field(default=1 << 30, ge=1, description="Apple Health/audio")
    wearable_max_json_bytes: int = Field(default=20 << 20, ge=1, description="Fitbit/Oura bodies")
    wearable_produce_chunk: int = Field(default=5000, ge=1, description="samples per produce call")
    wearables_native: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Apple Health tokenizer: compiled (auto: when built, on: required) or off",
    )


class ChainSettings(_Base):
    """EVM: local anvil, contract deployment and the bridge relayer (keys only from env)."""

    anvil_port: int = 8545
    anvil_chain_id: int = 31337
    evm_rpc_url: str | None = Field(default=None, description="default: the local anvil")
    deployer_private_key: SecretStr | None = None
    relayer_private_key: SecretStr | None = None
    bridge_validator_keys: SecretStr | None = Field(default=None, description="comma-separated")
    contract_deployments_dir: Path | None = Field(
        default=None,
        description="where <chain id>.json deployment files are; default contracts/deployments",
    )
    actions_confirmations: int = Field(
        default=1,
        ge=1,
        description="blocks (the action's own included) before an app action is confirmed",
    )
    indexer_chains: str | None = Field(
        default=None,
        description="chains the indexer follows: CHAIN_ID=RPC_URL, comma-separated; default anvil",
    )
    indexer_confirmations: int = Field(
        default=0, ge=0, description="blocks behind the head the indexer stays (0: follow the head)"
    )
    indexer_reorg_window: int = Field(
        default=128,
        ge=2,
        description="unfinalized blocks whose hashes are kept; deeper reorg stops",
    )
    indexer_start_block: int = Field(default=0, ge=0, description="first block of a new chain")
    indexer_batch_blocks: int = Field(
        default=2000, ge=1, description="blocks per eth_getLogs range at most"
    )
    indexer_poll_s: float = Field(default=0.5, gt=0, description="wait between polls at the head")
    indexer_stall_after_s: float = Field(
        default=120.0, gt=0, description="a head unchanged this long is reported as stalled"
    )
    indexer_rpc_timeout_s: float = Field(default=10.0, gt=0)
    nft_ipfs_gateway: str = Field(
        default="https://ipfs.io/ipfs/",
        description="ipfs://CID/path is fetched from GATEWAY+CID/path",
    )
    nft_metadata_timeout_s: float = Field(default=5.0, gt=0, description="per metadata fetch")
    nft_metadata_max_bytes: int = Field(
        default=256 * 1024, ge=1, description="a metadata document larger than this is refused"
    )
    nft_metadata_refresh_cooldown_s: float = Field(
        default=60.0, ge=0, description="a token's metadata is refetched at most this often"
    )
    nft_metadata_allow_private: bool | None = Field(
        default=None,
        description="fetch from private/loopback addresses (SSRF guard off); default: local only",
    )

    @property
    def evm_url(self) -> str:
        """JSON-RPC URL of the EVM node (the local anvil unless STRIDE_EVM_RPC_URL is set)."""
        return self.evm_rpc_url or f"http://127.0.0.1:{self.anvil_port}"

    @property
    def deployments_dir(self) -> Path:
        """The folder of the per-chain deployment files of the Stride contracts."""
        return self.contract_deployments_dir or REPO_ROOT / "contracts" / "deployments"

    @property
    def indexed_chains(self) -> dict[int, str]:
        """chain id -> RPC URL of every chain the indexer follows."""
        if not self.indexer_chains:
            return {self.anvil_chain_id: self.evm_url}
        chains: dict[int, str] = {}
        for item in self.indexer_chains.split(","):
            chain_id, sep, url = item.strip().partition("=")
            if not sep or not chain_id.strip().isdigit() or not url.strip():
                raise ValueError(f"STRIDE_INDEXER_CHAINS: {item.strip()!r} is not CHAIN_ID=RPC_URL")
            chains[int(chain_id)] = url.strip()
        return chains

    @property
    def nft_metadata_private_allowed(self) -> bool:
        """Whether metadata may be fetched from private addresses (local development only by
        default: the SSRF guard is on in production)."""
        if self.nft_metadata_allow_private is not None:
            return self.nft_metadata_allow_private
        return self.is_local


class WriterSettings(ChainSettings):
    """The chain writer (``python -m chain_writer``): one sender per chain, batches, fees.

    The sender's key comes from ``STRIDE_WRITER_PRIVATE_KEY`` or, with
    ``STRIDE_WRITER_SIGNER=kms``, from an AWS KMS secp256k1 key; on the local stack a key
    is generated into ``<state_dir>/secrets.json`` on first use.
    """

    writer_chain_id: int | None = Field(default=None, description="default: the local anvil")
    writer_rpc_url: str | None = Field(default=None, description="default: STRIDE_EVM_RPC_URL")
    writer_distributor_address: str | None = Field(
        default=None, description="default: from contracts/deployments/<chain id>.json"
    )
    writer_signer: Literal["local", "kms"] = "local"
    writer_private_key: SecretStr | None = None
    writer_kms_key_id: str | None = Field(default=None, description="the KMS key (ECC_SECG_P256K1)")
    writer_kms_region: str | None = None
    writer_kms_endpoint_url: str | None = Field(default=None, description="e.g. a moto server")
    writer_batch_size: int = Field(
        default=256, ge=1, le=512, description="mint commands per transaction at most"
    )
    writer_max_inflight_txs: int = Field(
        default=16, ge=1, description="transactions sent but not yet mined, at most"
    )
    writer_confirmations: int = Field(
        default=1, ge=1, description="blocks (the mined one included) before a tx is confirmed"
    )
    writer_poll_s: float = Field(default=0.1, gt=0, description="wait between passes when idle")
    writer_reconcile_s: float = Field(
        default=30.0, gt=0, description="nonces are reconciled with the chain this often"
    )
    writer_bump_after_blocks: int = Field(
        default=3, ge=1, description="a tx unmined this many blocks is replaced with higher fees"
    )
    writer_fee_bump_percent: int = Field(
        default=25, ge=10, description="each replacement raises both fees by this much at least"
    )
    writer_max_fee_gwei: Decimal = Field(
        default=Decimal("500"), gt=0, description="cap of maxFeePerGas (replacements included)"
    )
    writer_priority_fee_gwei: Decimal = Field(
        default=Decimal("1"), ge=0, description="the least maxPriorityFeePerGas offered"
    )
    writer_permit_ttl_s: int = Field(
        default=3600, ge=60, description="deadline of the permits the app is asked to sign"
    )
    writer_metrics_port: int = Field(default=9104, description="the writer's /metrics")

    @property
    def writer_chain(self) -> int:
        return self.writer_chain_id if self.writer_chain_id is not None else self.anvil_chain_id

    @property
    def writer_rpc(self) -> str:
        return self.writer_rpc_url or self.evm_url

    def writer_key(self) -> str:
        """The local signer's private key (hex). Locally one is derived from a generated
        secret (kept in state_dir); elsewhere STRIDE_WRITER_PRIVATE_KEY must be set."""
        if self.writer_private_key:
            return self.writer_private_key.get_secret_value()
        if not self.is_local:
            raise RuntimeError(
                "STRIDE_WRITER_PRIVATE_KEY (or STRIDE_WRITER_SIGNER=kms) must be set outside "
                "the local stack"
            )
        seed = self.local_secret("writer_key_seed")
        return "0x" + hashlib.sha256(seed.encode()).hexdigest()


class MonitoringSettings(_Base):
    """Metrics endpoints (loopback only), Prometheus, where it sends alerts, the log format."""

    metrics_host: str = Field(
        default="127.0.0.1", description="every metrics endpoint binds this (loopback)"
    )
    api_metrics_port: int = Field(default=9101, description="the API's /metrics (all workers)")
    streams_metrics_port: int = Field(
        default=9102, description="the stream workers' /metrics (all processes)"
    )
    exporter_port: int = Field(
        default=9103, description="Kafka consumer lag and state-folder disk exporter"
    )
    postgres_exporter_port: int = Field(default=9187, description="prometheus-postgres-exporter")
    prometheus_port: int = 9090
    prometheus_retention: str = Field(default="15d", description="how long Prometheus keeps data")
    scrape_interval_s: int = Field(default=15, ge=1, description="Prometheus scrape and rules")
    log_format: Literal["json", "text"] = Field(
        default="json", description="json: one object per line, with the request id"
    )
    api_access_log: bool = Field(
        default=True, description="one JSON line per API request (request id, route, status)"
    )

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"


class BackupSettings(_Base):
    """pgBackRest: the repository of the local cluster's backups and archived WAL."""

    backup_repo_dir: Path | None = Field(
        default=None, description="pgBackRest repository; default state_dir/backups"
    )
    backup_stanza: str = Field(default="stride", description="pgBackRest stanza of the cluster")
    backup_retention_full: int = Field(
        default=2, ge=1, description="full backups kept (and the WAL they need)"
    )
    backup_process_max: int = Field(default=2, ge=1, description="pgBackRest parallel processes")
    backup_archive_timeout_s: int = Field(
        default=60, ge=1, description="a WAL segment is archived at least this often (the RPO)"
    )


class WalletSettings(ApiSettings, ChainSettings):
    """Wallet sign-in (EIP-4361) and player links: what a message must name, how long a
    nonce or a link code lives, which chains verify contract wallets (EIP-1271)."""

    siwe_domain: str | None = Field(
        default=None, description="the domain a message must name; default: api host:port"
    )
    siwe_uri: str | None = Field(
        default=None, description="the URI a message must name (or one below it); default: api_url"
    )
    wallet_chains: dict[int, str] | None = Field(
        default=None,
        description='JSON {"chain id": "RPC URL"} of the chains sign-in accepts; default: anvil',
    )
    wallet_rpc_timeout_s: float = Field(
        default=5.0, gt=0, description="an EIP-1271 isValidSignature call gives up after"
    )
    wallet_nonce_ttl_s: int = Field(default=600, ge=10, description="a sign-in nonce lives")
    wallet_max_nonces_per_user: int = Field(
        default=5, ge=1, description="unused nonces kept per user (older ones are dropped)"
    )
    wallet_clock_skew_s: int = Field(
        default=60, ge=0, description="tolerance on Issued At, Expiration Time, Not Before"
    )
    player_link_code_ttl_s: int = Field(
        default=300, ge=10, description="a player link code lives (the game redeems it)"
    )
    player_max_link_codes_per_user: int = Field(
        default=5, ge=1, description="unused link codes kept per user (older ones are dropped)"
    )

    @property
    def siwe_expected_domain(self) -> str:
        return self.siwe_domain or f"{self.api_host}:{self.api_port}"

    @property
    def siwe_expected_uri(self) -> str:
        return self.siwe_uri or self.api_url

    @property
    def wallet_rpc_urls(self) -> dict[int, str]:
        """RPC URL per chain id that sign-in accepts (the local anvil unless set)."""
        if self.wallet_chains:
            return dict(self.wallet_chains)
        return {self.anvil_chain_id: self.evm_url}


class BattleSettings(_Base):
    """Matchmaking: the rating window that widens with waiting time, stale tickets; the
    battle engine's processes and batches (the ``battles`` worker role)."""

    battles_match_window: float = Field(
        default=3.0, ge=0, description="rating points (mu) two waiting players may differ"
    )
    battles_match_widen_per_s: float = Field(
        default=1.0, ge=0, description="the window grows this much per second of waiting"
    )
    battles_match_window_max: float = Field(default=25.0, ge=0, description="widest window")
    battles_ticket_ttl_s: float = Field(
        default=120.0, gt=0, description="a ticket not matched this long expires"
    )
    battles_match_interval_s: float = Field(
        default=0.5, gt=0, description="stride battles match: wait between passes"
    )
    battles_processes: int = Field(
        default=2, ge=1, description="battle engine worker processes (the battles role)"
    )
    battles_batch_size: int = Field(
        default=1000,
        ge=1,
        description="Battles per engine transaction (at most): what queued while the previous "
        "one was written, in takes of the stream closed after BATCH_WITHIN_S",
    )
    battles_batch_within_s: float = Field(default=0.1, gt=0)


class MetricsSettings(_Base):
    """Metrics and alerts: the sampler, retention, the alert agent, Alertmanager, market data."""

    metrics_sample_lag_s: float = Field(
        default=10.0, ge=0, description="a minute is sampled this long after it ends"
    )
    metrics_backfill_minutes: int = Field(
        default=60, ge=0, description="minutes a restarted sampler catches up; older ones are gaps"
    )
    metrics_retention_days: int = Field(
        default=7, ge=2, description="minute samples kept (day partitions dropped after)"
    )
    metrics_rollup_retention_days: int = Field(default=400, ge=1, description="hourly rollups kept")
    metrics_alert_batch_size: int = Field(default=10000, ge=1, description="samples per batch")
    metrics_alert_batch_within_s: float = Field(default=0.5, gt=0)
    metrics_alert_hold_s: int = Field(
        default=900,
        ge=60,
        description="a firing alert posted to Alertmanager ends after this "
        "unless re-posted (every sample of a firing metric re-posts it)",
    )
    metrics_cache_ttl_s: float = Field(
        default=10.0, ge=0, description="API cache of series and rankings (samples are per minute)"
    )
    metrics_cache_max_mb: int = Field(
        default=64, ge=1, description="that cache's bound per API process, in MB of JSON"
    )
    alertmanager_url: str | None = Field(
        default=None, description="Alertmanager's API; default the local one"
    )
    alertmanager_port: int = 9093
    alertmanager_cluster_port: int = Field(
        default=0, ge=0, description="gossip port of the local Alertmanager; 0: clustering off"
    )
    alertmanager_group_wait_s: float = Field(
        default=1.0, gt=0, description="local Alertmanager: wait before a group's first notice"
    )
    alertmanager_group_interval_s: float = Field(
        default=2.0, gt=0, description="local Alertmanager: wait before notifying a group again"
    )
    webhook_receiver_port: int = Field(
        default=9097, description="the local webhook receiver that records notifications"
    )
    metrics_market_url: str | None = Field(
        default=None, description="exchange REST API (klines) for market data; unset: disabled"
    )
    metrics_market_pairs: str = Field(
        default="BTCUSDT,ETHUSDT", description="comma-separated trading pairs sampled when enabled"
    )

    @property
    def alertmanager_api(self) -> str:
        return (self.alertmanager_url or f"http://127.0.0.1:{self.alertmanager_port}").rstrip("/")

    @property
    def webhook_receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_receiver_port}"


class SweepSettings(_Base):
    """The sweeper (``stride up sweeper``, ``stride sweep``): how often each sweep runs and
    how many rows one transaction of a sweep takes."""

    sweep_holds_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="release held purchases whose burn was not authorized by payment_due_at",
    )
    sweep_gifts_interval_s: float = Field(
        default=60.0, gt=0, description="expire offered gifts past expires_at (escrow back)"
    )
    sweep_uploads_interval_s: float = Field(
        default=300.0, gt=0, description="expire incomplete uploads past expiry (parts deleted)"
    )
    sweep_refunds_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="issue the refund mint of paid grants whose items could not be granted",
    )
    sweep_batch_size: int = Field(
        default=100, ge=1, le=10000, description="rows per transaction of a sweep"
    )
    sweeper_metrics_port: int = Field(default=9105, description="the sweeper's /metrics")


class Settings(
    WalletSettings,
    ApiSettings,
    WarehouseSettings,
    KafkaSettings,
    StreamsSettings,
    EventSettings,
    RewardSettings,
    AdminSettings,
    ContentSettings,
    LakeSettings,
    SparkSettings,
    WearableSettings,
    WriterSettings,
    ChainSettings,
    MonitoringSettings,
    BackupSettings,
    MetricsSettings,
    BattleSettings,
    SweepSettings,
):
    """All configuration of Stride: every group at once. Field ``foo`` is read from
    ``STRIDE_FOO``. Code that needs one concern takes that group's type (e.g. a
    ``LakeSettings``), and a ``Settings`` is accepted wherever a group is."""


@cache
def get_settings() -> Settings:
    """The process-wide settings (tests call ``get_settings.cache_clear()`` after changes)."""
    return Settings()
