"""The services of the local stack, declared once. Later features append to ``SERVICES``."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from chain_indexer.heartbeat import indexer_problem
from cli.monitoring import MONITORING_SERVICES
from cli.proxy import PROXY, prepare_socket, upstream_socket
from cli.spark_service import SPARK
from cli.stack import Reporter, Service, StackError, free_port, private_dir
from contracts.anvil import anvil_command, rpc_problem
from core.platform.config import Settings
from core.platform.kafka_security import tls_context_for_probe
from core.platform.migrate import sync_readonly_grants, upgrade_to_head
from core.platform.observability import MULTIPROC_ENV, logging_dict_config, reset_multiprocess_dir
from core.platform.probes import http_problem, kafka_problem, postgres_problem
from streams.heartbeat import clear_heartbeats, worker_problem

# ---- PostgreSQL ------------------------------------------------------------------------


PG_MAJOR = 15
PG_MAX_CONNECTIONS = 200  # a restored copy needs at least as many to replay the WAL


def pg_binary(name: str) -> str | None:
    """A PostgreSQL 15 server program: on PATH, else where ``pg_config --bindir`` says, else
    Debian's ``/usr/lib/postgresql/15/bin`` (Debian's ``postgresql-15`` puts only the client
    wrappers on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run(  # noqa: S603 - fixed arguments
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    candidates.append(Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin"))
    for directory in candidates:
        if os.access(directory / name, os.X_OK):
            return str(directory / name)
    return None


def pg_data_dir(settings: Settings) -> Path:
    """The cluster's data folder: ``<state>/postgres/data``, unless the cluster runs as an
    unprivileged OS user (we are root) who cannot reach the state folder: PostgreSQL refuses
    to run as root, so its data then lives in ``/var/lib/stride/postgres-<hash>/data``
    (``cli.stack.private_dir``)."""
    return private_dir(settings, pg_os_user(settings), "postgres") / "data"


def pg_os_user(settings: Settings) -> str | None:
    """PostgreSQL refuses to run as root: when we are root, run it as an unprivileged user."""
    if os.geteuid() != 0:
        return None
    name = settings.pg_os_user or "postgres"
    try:
        pwd.getpwnam(name)
    except KeyError:
        if settings.pg_os_user:
            raise StackError(
                f"OS user {name!r} (STRIDE_PG_OS_USER) does not exist; create it or unset it"
            ) from None
        name = "stride-pg"
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(  # noqa: S603
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],  # noqa: S607
                check=True,
            )
    return name


def _chown_tree(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _initdb(settings: Settings, report: Reporter) -> None:
    data = pg_data_dir(settings)
    if (data / "PG_VERSION").exists():
        return
    initdb = pg_binary("initdb")
    if initdb is None:
        raise StackError(
            "initdb not found: install the PostgreSQL 15 server binaries "
            "(Debian: apt-get install postgresql-15; found on PATH or by pg_config --bindir)"
        )
    report(f"postgres: creating a new cluster in {data} (initdb)")
    user = pg_os_user(settings)
    if not data.is_relative_to(settings.state_dir):
        report(
            f"postgres: the cluster runs as OS user {user!r}, who cannot reach "
            f"{settings.state_dir}; its data lives in {data} instead"
        )
        data.parent.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        data.parent.mkdir(mode=0o700, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    pwfile = data.parent / "initdb.pw"
    pwfile.write_text(settings.local_secret("postgres_password") + "\n")
    _chown_tree(data.parent, user)
    try:
        result = subprocess.run(  # noqa: S603
            [
                initdb,
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            capture_output=True,
            text=True,
            user=user,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise StackError(
            f"initdb failed (exit {result.returncode}):\n{result.stderr.strip() or result.stdout}"
            + (
                f"\nThe cluster runs as OS user {user!r}: every folder above {data} must be "
                "readable by it (set STRIDE_STATE_DIR to such a folder)."
                if user
                else ""
            )
        )


def _postgres_command(settings: Settings) -> list[str]:
    """With pgbackrest installed, the cluster archives its WAL (cli/backup.py) and listens on a
    private Unix socket too (pgBackRest connects there); otherwise on TCP only."""
    from cli.backup import postgres_archive_options

    archive = postgres_archive_options(settings)
    return [
        pg_binary("postgres") or "postgres",
        "-D",
        str(pg_data_dir(settings)),
        "-p",
        str(settings.pg_port),
        "-c",
        f"listen_addresses={settings.pg_host}",
        *(archive or ["-c", "unix_socket_directories="]),
        "-c",
        f"max_connections={PG_MAX_CONNECTIONS}",
        "-c",
        "logging_collector=off",
    ]


def _prepare_postgres(settings: Settings, report: Reporter) -> None:
    from cli import backup

    _initdb(settings, report)
    backup.prepare(settings, report)


def _postgres_ready(settings: Settings, report: Reporter) -> None:
    from cli import backup

    _bootstrap_roles(settings, report)
    backup.ensure_stanza(settings, report)


def _bootstrap_roles(settings: Settings, report: Reporter) -> None:
    """Create (or re-sync) the app role, the read-only role and the two databases."""
    app_pw = settings.local_secret("stride_password")
    ro_role = settings.readonly_role
    ro_pw = settings.local_secret(f"{ro_role}_password")
    with psycopg.connect(settings.superuser_dsn + " dbname=postgres", autocommit=True) as conn:
        for role, password in (("stride", app_pw), (ro_role, ro_pw)):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
        timeout = f"{settings.query_statement_timeout_ms}ms"
        conn.execute(
            sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(
                sql.Identifier(ro_role)
            )
        )
        conn.execute(
            sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(
                sql.Identifier(ro_role), sql.Literal(timeout)
            )
        )
        for database in ("stride", "warehouse"):
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if not exists:
                report(f"postgres: creating database {database}")
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER stride").format(sql.Identifier(database))
                )
    # The app owns the public schema of its databases (PostgreSQL 15 revokes CREATE on it).
    for database in ("stride", "warehouse"):
        dsn = settings.superuser_dsn + f" dbname={database}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ALTER SCHEMA public OWNER TO stride")
            conn.execute(
                sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(ro_role))
            )


POSTGRES = Service(
    name="postgres",
    description="PostgreSQL 15, private cluster",
    command=_postgres_command,
    probe=lambda s: postgres_problem(s.superuser_dsn + " dbname=postgres"),
    url=lambda s: f"postgresql://{s.pg_host}:{s.pg_port}/stride",
    port=lambda s: s.pg_port,
    prepare=_prepare_postgres,
    after_ready=_postgres_ready,
    run_as=pg_os_user,
    stop_signal=signal.SIGINT,  # "fast" shutdown: roll back open transactions, exit cleanly
    missing_hint="Install the PostgreSQL 15 server binaries (Debian: apt-get install "
    "postgresql-15); they are found on PATH, by pg_config --bindir or under "
    f"/usr/lib/postgresql/{PG_MAJOR}/bin.",
)

# ---- Kafka (Apache Kafka, KRaft) ------------------------------------------------------------


def _kafka_version() -> str:
    """The Kafka version declared in engines/kafka/pom.xml (one place for it)."""
    import re

    from cli.engines import DECLARATIONS_DIR

    pom = (DECLARATIONS_DIR / "kafka" / "pom.xml").read_text()
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    return match.group(1) if match else "4"


KAFKA_VERSION = _kafka_version()


def kafka_dir(settings: Settings) -> Path:
    return settings.state_dir / "kafka"


def kafka_server_properties(settings: Settings) -> str:
    """One combined broker + controller (KRaft), loopback listeners, data in the state folder.

    Replication factors are 1 because there is one broker; production (MSK) uses 3.
    ``group.initial.rebalance.delay.ms=0``: a worker that joins alone starts consuming at
    once instead of waiting 3 s for others.
    """
    broker = f"127.0.0.1:{settings.kafka_port}"
    controller = f"127.0.0.1:{settings.kafka_controller_port}"
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{controller}",
        "listeners": f"PLAINTEXT://{broker},CONTROLLER://{controller}",
        "advertised.listeners": f"PLAINTEXT://{broker}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(kafka_dir(settings) / "data"),
        "num.partitions": str(settings.kafka_topic_partitions),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": str(settings.kafka_retention_hours),
        "log.segment.bytes": str(256 * 1024 * 1024),
    }
    return "".join(f"{key}={value}\n" for key, value in lines.items())


KAFKA_LOG4J2 = """\
# Written by `stride up kafka`: the broker logs warnings and errors to the supervisor's log.
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = out
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""


def _kafka_jvm(settings: Settings) -> list[str]:
    from cli.engines import classpath, java_binary

    heap = f"{settings.kafka_heap_mb}m"
    return [
        java_binary(),
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={kafka_dir(settings) / 'log4j2.properties'}",
        "-cp",
        classpath("kafka"),
    ]


def _prepare_kafka(settings: Settings, report: Reporter) -> None:
    """Write the broker's configuration; format its storage the first time (KRaft)."""
    home = kafka_dir(settings)
    (home / "data").mkdir(parents=True, exist_ok=True)
    config = home / "server.properties"
    config.write_text(kafka_server_properties(settings))
    (home / "log4j2.properties").write_text(KAFKA_LOG4J2)
    if (home / "data" / "meta.properties").exists():
        return
    cluster_id = _kafka_cluster_id()
    report(f"kafka: formatting the KRaft storage in {home / 'data'} (cluster {cluster_id})")
    result = subprocess.run(  # noqa: S603 - our own command line
        [
            *_kafka_jvm(settings),
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",  # one argument: an id may start with "-"
            "-c",
            str(config),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StackError(
            f"kafka: formatting the storage failed (exit {result.returncode}):\n"
            + (result.stderr.strip() or result.stdout.strip())[-2000:]
        )


def _kafka_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (as
    ``kafka-storage random-uuid`` prints). Never one starting with ``-``, which the storage
    tool would read as an option (Kafka's own ``Uuid.randomUuid`` draws again then too)."""
    import base64
    import secrets

    while True:
        cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _create_topics(settings: Settings, report: Reporter) -> None:
    """The platform's topics exist once the broker is ready (a real admin request)."""
    from core.platform.topics import ensure_topics

    created = ensure_topics(settings)
    if created:
        report(f"kafka: created topics {', '.join(created)}")


KAFKA = Service(
    name="kafka",
    description=f"Apache Kafka {KAFKA_VERSION} (KRaft, data in the state folder)",
    command=lambda s: [*_kafka_jvm(s), "kafka.Kafka", str(kafka_dir(s) / "server.properties")],
    probe=lambda s: kafka_problem(s.kafka_bootstrap, tls=tls_context_for_probe(s)),
    url=lambda s: f"kafka://127.0.0.1:{s.kafka_port}",
    port=lambda s: s.kafka_port,
    prepare=_prepare_kafka,
    after_ready=_create_topics,
    start_timeout=90.0,  # a JVM on a loaded 2-core machine; usually ready in about 5 s
    stop_timeout=60.0,  # a controlled shutdown flushes and closes every partition's log
    missing_hint="Install Java 17 (Debian: openjdk-17-jdk-headless) and run "
    "`stride engines fetch`.",
)

# ---- API -----------------------------------------------------------------------------------


def _api_metrics_dir(settings: Settings) -> Path:
    return settings.state_dir / "metrics" / "api"


def _api_log_config(settings: Settings) -> Path:
    return settings.state_dir / "api" / "logging.json"


def _prepare_api(settings: Settings, report: Reporter) -> None:
    report("api: migrating the database to the latest revision")
    upgrade_to_head(settings)
    sync_readonly_grants(settings)
    prepare_socket(settings)
    reset_multiprocess_dir(_api_metrics_dir(settings))
    _api_log_config(settings).parent.mkdir(parents=True, exist_ok=True)
    _api_log_config(settings).write_text(json.dumps(logging_dict_config(settings.log_format)))


def _uvicorn_command(settings: Settings) -> list[str]:
    """uvicorn on its Unix socket only (no TCP port): nginx (``proxy``) is the front door.
    Every peer of that socket is nginx or the folder's owner, so X-Forwarded-For, which nginx
    overwrites with the real client address, is trusted from all of them: uvicorn sees no
    address for a socket peer, hence ``*`` (uvicorn's docs, "Proxies and Forwarded Headers")."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "api.main:app",
        "--uds",
        str(upstream_socket(settings)),
        "--workers",
        str(settings.api_workers),
        "--no-access-log",  # the API logs each request itself, with its request id
        "--log-config",
        str(_api_log_config(settings)),
        "--proxy-headers",
        "--forwarded-allow-ips",
        "*",
        "--timeout-keep-alive",
        "65",  # longer than nginx keeps its idle upstream connections (60 s)
    ]


API = Service(
    name="api",
    description="FastAPI on uvicorn, on a Unix socket behind the proxy",
    command=_uvicorn_command,
    probe=lambda s: http_problem("http://api/health", uds=str(upstream_socket(s))),
    url=lambda s: f"unix:{upstream_socket(s)}",
    port=lambda _s: 0,  # listens on no TCP port
    depends_on=("postgres", "kafka"),
    prepare=_prepare_api,
    # Multiprocess metrics: every uvicorn worker writes its samples there, the first worker
    # to bind api_metrics_port serves the sum (core/platform/observability.py).
    env=lambda s: {"STRIDE_STATE_DIR": str(s.state_dir), MULTIPROC_ENV: str(_api_metrics_dir(s))},
)

# ---- Faust worker ----------------------------------------------------------------------------


def _prepare_worker(settings: Settings, report: Reporter) -> None:
    report("worker: migrating the database to the latest revision")
    upgrade_to_head(settings)
    clear_heartbeats(settings)


WORKER = Service(
    name="worker",
    description="Faust workers: game events -> scores, rewards; lake sink; alerts; battle engine",
    command=lambda _s: [sys.executable, "-m", "streams", "run"],
    probe=worker_problem,
    url=lambda s: f"consumer group {s.streams_app_id}",
    port=lambda _s: 0,  # listens on nothing
    depends_on=("postgres", "kafka"),
    prepare=_prepare_worker,
    env=lambda s: {"STRIDE_STATE_DIR": str(s.state_dir)},
    # Ready = every scoring and battle engine process owns its partitions and the lake sink
    # and metric alerts processes beat (heartbeat files): a few seconds,
    # more on a loaded 2-core machine while the JVMs of Kafka and Spark warm up.
    start_timeout=120.0,
)

# ---- Lakehouse: Spark Connect (cli/spark_service.py) and Dagster ----------------------------


# The local instance: default storage (SQLite under DAGSTER_HOME) and run launcher, and no
# telemetry (nor the UI's "Join the Dagster community" pop-up that asks about it).
DAGSTER_YAML = """\
# Written by `stride up dagster` when missing; edit freely, it is kept.
telemetry:
  enabled: false
"""


def _dagster_home(settings: Settings, report: Reporter) -> None:
    home = settings.state_dir / "dagster"
    report(f"dagster: DAGSTER_HOME is {home}")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)


DAGSTER = Service(
    name="dagster",
    description="Dagster UI and daemon (lakehouse assets, schedule, sensor)",
    command=lambda s: [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-h",
        "127.0.0.1",
        "-p",
        str(s.dagster_port),
        "-m",
        "dagster_project.definitions",
    ],
    probe=lambda s: http_problem(f"http://127.0.0.1:{s.dagster_port}/server_info"),
    url=lambda s: f"http://127.0.0.1:{s.dagster_port}",
    port=lambda s: s.dagster_port,
    depends_on=("spark", "postgres"),
    prepare=_dagster_home,
    env=lambda s: {
        "STRIDE_STATE_DIR": str(s.state_dir),
        "DAGSTER_HOME": str(s.state_dir / "dagster"),
    },
    start_timeout=90.0,
)

# ---- EVM (anvil) ---------------------------------------------------------------------------


def _deploy_contracts(settings: Settings, report: Reporter) -> None:
    """Deploy the contracts once per chain; a restart with saved state reuses them."""
    from contracts.deploy import DeployError, ensure_local_deployment

    key = settings.deployer_private_key
    try:
        ensure_local_deployment(
            settings.evm_url,
            settings.anvil_chain_id,
            key.get_secret_value() if key else None,
            report=lambda message: report(f"anvil: {message}"),
            directory=settings.deployments_dir,
            rewards_sender=_writer_address(settings),
        )
    except DeployError as exc:
        raise StackError(f"anvil: deploying the contracts failed: {exc}") from exc


def _writer_address(settings: Settings) -> str | None:
    """The chain writer's sender on the local chain (its key is generated locally), so the
    deployment gives it SENDER_ROLE on the distributor and gas money."""
    if settings.writer_signer != "local" or settings.writer_chain != settings.anvil_chain_id:
        return None
    from core.chain.signer import LocalKeySigner

    return LocalKeySigner(settings.writer_key()).address


ANVIL = Service(
    name="anvil",
    description="anvil EVM node (npm @foundry-rs/anvil) with the Stride contracts",
    command=lambda s: anvil_command(
        s.anvil_port, s.anvil_chain_id, state=s.state_dir / "anvil" / "state.json"
    ),
    probe=lambda s: rpc_problem(f"http://127.0.0.1:{s.anvil_port}"),
    url=lambda s: f"http://127.0.0.1:{s.anvil_port}",
    port=lambda s: s.anvil_port,
    prepare=lambda s, _report: (s.state_dir / "anvil").mkdir(parents=True, exist_ok=True),
    after_ready=_deploy_contracts,
    missing_hint="Install the contract toolchain: npm ci --prefix contracts",
)

# ---- Metrics: Alertmanager, the local webhook receiver, the sampler ------------------------


def alertmanager_dir(settings: Settings) -> Path:
    return settings.state_dir / "alertmanager"


def _prepare_alertmanager(settings: Settings, report: Reporter) -> None:
    """The generated configuration (no subscriptions yet: the sampler and the API rewrite it
    from the database and reload), and the data folder (silences, notification log)."""
    from core.metrics.alertmanager import config_path, write_config

    (alertmanager_dir(settings) / "data").mkdir(parents=True, exist_ok=True)
    if not config_path(settings).exists():
        write_config(settings, [])
        report(f"alertmanager: configuration in {config_path(settings)}")


def _alertmanager_command(settings: Settings) -> list[str]:
    from core.metrics.alertmanager import config_path

    cluster = (
        f"127.0.0.1:{settings.alertmanager_cluster_port}"
        if settings.alertmanager_cluster_port
        else ""  # empty: no gossip listener (one local instance)
    )
    return [
        shutil.which("prometheus-alertmanager") or "prometheus-alertmanager",
        f"--config.file={config_path(settings)}",
        f"--storage.path={alertmanager_dir(settings) / 'data'}",
        f"--web.listen-address=127.0.0.1:{settings.alertmanager_port}",
        f"--cluster.listen-address={cluster}",
        "--log.level=warn",
    ]


def _after_alertmanager(settings: Settings, report: Reporter) -> None:
    """Routes for the subscriptions already in the database (when it is reachable)."""
    from core.metrics.alertmanager import sync_alertmanager_config
    from core.platform.db import engine_for

    if postgres_problem(settings.superuser_dsn + " dbname=postgres") is not None:
        return
    try:
        if sync_alertmanager_config(engine_for(settings.db_url, pool_size=1), settings):
            report("alertmanager: routes of the existing subscriptions loaded")
    except Exception as exc:
        report(f"alertmanager: subscriptions not loaded yet ({type(exc).__name__})")


ALERTMANAGER = Service(
    name="alertmanager",
    description="Prometheus Alertmanager (Debian): groups, dedupes, silences, delivers alerts",
    command=_alertmanager_command,
    probe=lambda s: http_problem(f"http://127.0.0.1:{s.alertmanager_port}/-/ready"),
    url=lambda s: f"http://127.0.0.1:{s.alertmanager_port}",
    port=lambda s: s.alertmanager_port,
    prepare=_prepare_alertmanager,
    after_ready=_after_alertmanager,
    missing_hint="Install Debian's prometheus-alertmanager (apt-get install "
    "prometheus-alertmanager); stride runs it itself, not as the system service.",
)


def _webhooks_log(settings: Settings) -> Path:
    return settings.state_dir / "webhooks" / "notifications.jsonl"


WEBHOOKS = Service(
    name="webhooks",
    description="local webhook receiver: records the notifications Alertmanager delivers",
    command=lambda s: [
        sys.executable,
        "-m",
        "core.metrics.receiver",
        "--port",
        str(s.webhook_receiver_port),
        "--log",
        str(_webhooks_log(s)),
    ],
    probe=lambda s: http_problem(f"{s.webhook_receiver_url}/health"),
    url=lambda s: f"{s.webhook_receiver_url}/notifications",
    port=lambda s: s.webhook_receiver_port,
)


def _sampler_ready_file(settings: Settings) -> Path:
    return settings.state_dir / "run" / "sampler.ready"


def _prepare_sampler(settings: Settings, report: Reporter) -> None:
    report("sampler: migrating the database to the latest revision")
    upgrade_to_head(settings)
    _sampler_ready_file(settings).unlink(missing_ok=True)


def _sampler_problem(settings: Settings) -> str | None:
    """Ready once the loop has run once (catalog synced, due minutes sampled)."""
    if not _sampler_ready_file(settings).exists():
        return "the sampler has not completed its first round yet"
    return None


SAMPLER = Service(
    name="sampler",
    description="metrics sampler: one sample per metric per minute -> PostgreSQL, "
    "metrics.samples.v1",
    command=lambda _s: [sys.executable, "-m", "core.metrics.sampler"],
    probe=_sampler_problem,
    url=lambda _s: "topic metrics.samples.v1",
    port=lambda _s: 0,
    depends_on=("postgres", "kafka", "alertmanager"),
    prepare=_prepare_sampler,
    env=lambda s: {"STRIDE_STATE_DIR": str(s.state_dir)},
)

# ---- Chain indexer ----------------------------------------------------------------------------


def _prepare_indexer(settings: Settings, report: Reporter) -> None:
    report("indexer: migrating the database to the latest revision")
    upgrade_to_head(settings)
    for path in (settings.state_dir / "run" / "heartbeats").glob("indexer.*.json"):
        path.unlink(missing_ok=True)


INDEXER = Service(
    name="indexer",
    description="chain indexer: EVM logs -> chain.logs.v1 (reorg-safe), NFT metadata",
    command=lambda _s: [sys.executable, "-m", "chain_indexer"],
    probe=indexer_problem,
    url=lambda s: ", ".join(f"chain {c}: {u}" for c, u in s.indexed_chains.items()),
    port=lambda _s: 0,  # listens on nothing
    depends_on=("postgres", "kafka", "anvil"),
    prepare=_prepare_indexer,
    env=lambda s: {"STRIDE_STATE_DIR": str(s.state_dir)},
)

# ---- Battles: the matcher ---------------------------------------------------------------------


def _matcher_ready_file(settings: Settings) -> Path:
    return settings.state_dir / "run" / "matcher.ready"


def _prepare_matcher(settings: Settings, report: Reporter) -> None:
    report("matcher: migrating the database to the latest revision")
    upgrade_to_head(settings)
    _matcher_ready_file(settings).unlink(missing_ok=True)


def _matcher_problem(settings: Settings) -> str | None:
    """Ready once it has served every queue once (database and broker reached)."""
    if not _matcher_ready_file(settings).exists():
        return "the matcher has not completed its first round yet"
    return None


MATCHER = Service(
    name="matcher",
    description="matchmaker: pairs waiting players of every game and mode by rating, "
    "queues their battles on battles.requests.v1",
    command=lambda s: [
        sys.executable,
        "-m",
        "cli.main",
        "battles",
        "serve",
        "--ready-file",
        str(_matcher_ready_file(s)),
    ],
    probe=_matcher_problem,
    url=lambda _s: "topic battles.requests.v1",
    port=lambda _s: 0,  # listens on nothing
    depends_on=("postgres", "kafka"),
    prepare=_prepare_matcher,
    env=lambda s: {"STRIDE_STATE_DIR": str(s.state_dir)},
)


# ---- The sweeper: scheduled expiries and refunds ---------------------------------------------


def _prepare_sweeper(settings: Settings, report: Reporter) -> None:
    from cli.sweeper import heartbeat_path

    report("sweeper: migrating the database to the latest revision")
    upgrade_to_head(settings)
    heartbeat_path(settings).unlink(missing_ok=True)


def _sweeper_problem(settings: Settings) -> str | None:
    from cli.sweeper import sweeper_problem

    return sweeper_problem(settings)


def _sweeper_command(settings: Settings) -> list[str]:
    from cli.sweeper import heartbeat_path

    return [
        sys.executable,
        "-m",
        "cli.main",
        "sweep",
        "--heartbeat-file",
        str(heartbeat_path(settings)),
    ]


SWEEPER = Service(
    name="sweeper",
    description="sweeper: releases unpaid purchase holds, expires gifts and uploads, "
    "refunds paid grants whose items could not be granted",
    command=_sweeper_command,
    probe=_sweeper_problem,
    url=lambda s: f"metrics {s.metrics_host}:{s.sweeper_metrics_port}",
    port=lambda _s: 0,  # listens only for /metrics
    depends_on=("postgres",),
    prepare=_prepare_sweeper,
    env=lambda s: {"STRIDE_STATE_DIR": str(s.state_dir)},
)


# ---- Chain writer -----------------------------------------------------------------------------


def _prepare_writer(settings: Settings, report: Reporter) -> None:
    report("writer: migrating the database to the latest revision")
    upgrade_to_head(settings)
    (settings.state_dir / "run" / "heartbeats" / f"writer.{settings.writer_chain}.json").unlink(
        missing_ok=True
    )


def _writer_problem(settings: Settings) -> str | None:
    from chain_writer.__main__ import writer_problem

    return writer_problem(settings)


WRITER = Service(
    name="writer",
    description="chain writer: reward commands -> mint/burn exactly once on chain",
    command=lambda _s: [sys.executable, "-m", "chain_writer"],
    probe=_writer_problem,
    url=lambda s: f"chain {s.writer_chain}: {s.writer_rpc}",
    port=lambda _s: 0,  # listens only for /metrics
    depends_on=("postgres", "kafka", "anvil"),
    prepare=_prepare_writer,
    env=lambda s: {"STRIDE_STATE_DIR": str(s.state_dir)},
)

SERVICES: list[Service] = [
    POSTGRES,
    KAFKA,
    API,
    PROXY,
    WEBHOOKS,
    ALERTMANAGER,
    WORKER,
    SAMPLER,
    MATCHER,
    SWEEPER,
    SPARK,
    DAGSTER,
    ANVIL,
    INDEXER,
    WRITER,
    *MONITORING_SERVICES,
]


def isolated_stack_env(prefix: str) -> tuple[Path, dict[str, str]]:
    """A throw-away state folder and the STRIDE_* variables that give every service of the
    stack a free loopback port there (tests and benchmarks run beside a developer's stack)."""
    state = Path(tempfile.mkdtemp(prefix=prefix))
    state.chmod(0o755)  # PostgreSQL runs as an unprivileged OS user when we are root
    return state, {
        "STRIDE_ENV": "test",
        "STRIDE_STATE_DIR": str(state),
        "STRIDE_PG_PORT": str(free_port()),
        "STRIDE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "STRIDE_KAFKA_CONTROLLER_PORT": str(free_port()),
        "STRIDE_API_PORT": str(free_port()),
        "STRIDE_SPARK_PORT": str(free_port()),
        "STRIDE_DAGSTER_PORT": str(free_port()),
        "STRIDE_ANVIL_PORT": str(free_port()),
        "STRIDE_API_METRICS_PORT": str(free_port()),
        "STRIDE_STREAMS_METRICS_PORT": str(free_port()),
        "STRIDE_WRITER_METRICS_PORT": str(free_port()),
        "STRIDE_SWEEPER_METRICS_PORT": str(free_port()),
        "STRIDE_EXPORTER_PORT": str(free_port()),
        "STRIDE_POSTGRES_EXPORTER_PORT": str(free_port()),
        "STRIDE_PROMETHEUS_PORT": str(free_port()),
        "STRIDE_ALERTMANAGER_PORT": str(free_port()),
        "STRIDE_WEBHOOK_RECEIVER_PORT": str(free_port()),
    }
