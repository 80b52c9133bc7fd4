"""The ``spark`` service of the local stack: Apache Spark 4.1 with Delta Lake 4.3, serving
Spark Connect on 127.0.0.1 to the lakehouse jobs (``spark_jobs/``, Dagster).

It runs Spark's own ``SparkConnectServer`` with ``java`` directly on the JVM jars of the
pyspark package (``pyspark/jars``: Spark 4.1.1, Scala 2.13, hadoop-client 3.4.2) plus the
Delta Lake and S3A jars that ``stride engines fetch`` put in ``.engines/spark``
(``engines/spark/pom.xml``, 25.6 MB). Not ``spark-submit``: that is a shell script which
starts a launcher JVM to compute this same command line and then ``exec``s it (about a
second more per start), and the supervisor recognises its process by the program it
started, which would be ``spark-submit`` on record and ``java`` in ``/proc``. Every
setting is a ``-Dspark.*`` system property, which ``SparkConf`` reads like
``--conf``; ``-Xmx`` stands in for ``spark.driver.memory``, which only the launcher applies.

Measured on the 2-core machine: the port answers ~7 s after start, the first Delta job of
a session pays ~5 s of class loading and JIT, later small jobs take 0.3 to 1 s.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from cli.stack import Reporter, Service, StackError
from core.platform.config import Settings

# What Spark's launcher adds for Java 17 (org.apache.spark.launcher.JavaModuleOptions of
# Spark 4.1.1; tests/integration/lake/test_lakehouse_spark.py checks the list against that class).
JAVA_MODULE_OPTIONS = (
    "-XX:+IgnoreUnrecognizedVMOptions",
    "--add-modules=jdk.incubator.vector",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
    "--add-opens=java.base/sun.security.action=ALL-UNNAMED",
    "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
    "--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "-Djdk.reflect.useDirectMethodHandle=false",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.type=pooled",
    "-Dio.netty.handler.ssl.defaultEndpointVerificationAlgorithm=NONE",
    "--enable-native-access=ALL-UNNAMED",
)
MAIN_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"

# Spark's log at WARN into the supervisor's log (stdout). ErrorUtils logs, at ERROR, every
# error it hands back to a client, including the harmless ReleaseExecute calls a client
# makes after it closed its session: the client gets (and Dagster logs) the real errors.
LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_OUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yyyy-MM-dd HH:mm:ss.SSS} %p %c{1}: %m%n%ex
logger.connect_errors.name = org.apache.spark.sql.connect.utils.ErrorUtils
logger.connect_errors.level = off
logger.parquet.name = org.apache.parquet
logger.parquet.level = error
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = error
"""


def pyspark_home() -> Path:
    """The installed pyspark package (its ``jars/`` are the Spark distribution)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise StackError("pyspark is not installed: run `bash scripts/setup.sh`")
    home = Path(spec.origin).parent
    if not (home / "jars").is_dir():
        raise StackError(
            f"{home} has no jars/: the full pyspark package is needed (not pyspark-client)"
        )
    return home


def spark_dir(settings: Settings) -> Path:
    return settings.state_dir / "spark"


def spark_conf(settings: Settings) -> dict[str, str]:
    """The server's Spark configuration (every Spark Connect session starts from it)."""
    state = spark_dir(settings)
    conf = {
        "spark.master": f"local[{settings.spark_cores}]",
        "spark.app.name": "stride-spark",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.connect.grpc.binding.address": settings.spark_host,
        "spark.connect.grpc.binding.port": str(settings.spark_port),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # Path-based tables only: no Hive metastore, so Derby stays unused (its home is set
        # anyway, so nothing lands in the working directory).
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": str(state / "warehouse"),
        # Hadoop's scratch space (S3A's upload buffers) defaults to /tmp/hadoop-<user>.
        "spark.hadoop.hadoop.tmp.dir": str(state / "tmp" / "hadoop"),
        "spark.sql.session.timeZone": "UTC",
        # Defaults sized for clusters make small jobs slow here: 200 shuffle partitions and
        # 50 for Delta's log replay turned a 4-row count into ~15 s and a VACUUM into ~50 s
        # on 2 cores; with these, 0.3 s and ~3 s.
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.default.parallelism": str(settings.spark_cores),
        "spark.databricks.delta.snapshotPartitions": str(settings.spark_cores),
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(settings.spark_cores),
        "spark.ui.enabled": "true" if settings.spark_ui_port else "false",
    }
    if settings.spark_ui_port:
        conf["spark.ui.port"] = str(settings.spark_ui_port)
    conf.update(settings.lake_s3a_conf)
    return conf


def spark_command(settings: Settings) -> list[str]:
    from cli.engines import classpath, java_binary

    state = spark_dir(settings)
    jars = f"{pyspark_home() / 'jars' / '*'}{os.pathsep}{classpath('spark')}"
    return [
        java_binary(),
        f"-Xmx{settings.spark_memory}",
        *JAVA_MODULE_OPTIONS,
        "-Duser.timezone=UTC",
        f"-Djava.io.tmpdir={state / 'tmp'}",
        f"-Dderby.system.home={state / 'derby'}",
        f"-Dlog4j2.configurationFile={state / 'log4j2.properties'}",
        *(f"-D{key}={value}" for key, value in spark_conf(settings).items()),
        "-cp",
        jars,
        MAIN_CLASS,
    ]


def _prepare(settings: Settings, report: Reporter) -> None:
    state = spark_dir(settings)
    for sub in ("warehouse", "local", "tmp", "derby"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    (state / "log4j2.properties").write_text(LOG4J2)
    report(f"spark: Spark 4.1 + Delta 4.3, state in {state}, lake {settings.lake_root}")


def _env(settings: Settings) -> dict[str, str]:
    env = {
        # The web UI (when on) and every other socket of the driver bind here.
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_DIRS": str(spark_dir(settings) / "local"),
    }
    # S3 credentials go through the environment, not the command line (visible in ps):
    # S3A's default provider chain reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    env.update(settings.lake_s3_credentials_env)
    return env


def _spark_problem(settings: Settings) -> str | None:
    from spark_jobs.session import spark_problem

    return spark_problem(settings.spark_host, settings.spark_port)


SPARK = Service(
    name="spark",
    description="Apache Spark 4.1 Connect server with Delta Lake 4.3 (lakehouse jobs)",
    command=spark_command,
    probe=_spark_problem,
    url=lambda s: s.spark_url,
    port=lambda s: s.spark_port,
    prepare=_prepare,
    env=_env,
    # ~7 s to the first answer when the machine is idle; a loaded 2-core CI box is slower.
    start_timeout=120.0,
    missing_hint="Install Java 17 (Debian: apt-get install openjdk-17-jre-headless) "
    "or set JAVA_HOME.",
)
