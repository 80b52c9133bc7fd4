"""Clients built from the security settings against a real Apache Kafka broker with a
SASL_PLAINTEXT listener and SCRAM-SHA-512 users (the same jars as ``stride up kafka``).

The broker is this module's own: the default stack keeps its one PLAINTEXT listener. Its
configuration is the stack's ``kafka_server_properties`` plus a second listener; the SCRAM
user is written into the KRaft metadata when the storage is formatted (``--add-scram``).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError as AioKafkaError
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaConnectionError
from pydantic import SecretStr

from cli.engines import jars
from cli.services import _kafka_cluster_id, _kafka_jvm, kafka_dir, kafka_server_properties
from cli.stack import free_port
from core.platform.config import Settings
from core.platform.kafka_security import aiokafka_options, kafka_python_options
from core.platform.probes import kafka_problem
from core.platform.topics import GAME_EVENTS, ensure_topics

pytestmark = pytest.mark.skipif(not jars("kafka"), reason="stride engines fetch kafka first")

USER, PASSWORD = "stride-app", "scram-secret-1"


def _wait_ready(process: subprocess.Popen[bytes], bootstrap: str, log: Path) -> None:
    """Until the SASL listener answers ApiVersions (it does before authentication)."""
    problem = None
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"the SCRAM broker exited:\n{log.read_text()[-3000:]}")
        problem = kafka_problem(bootstrap, timeout=0.1)
        if problem is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.1)  # returns at once if it dies, else paces the probe
    raise RuntimeError(f"the SCRAM broker did not get ready: {problem}")


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of a client of a fresh broker's SCRAM-SHA-512 listener (user ``USER``)."""
    state = tmp_path_factory.mktemp("kafka-scram")
    plain, sasl = free_port(), free_port()
    base = Settings(
        state_dir=state,
        kafka_bootstrap=f"127.0.0.1:{plain}",
        kafka_controller_port=free_port(),
        kafka_heap_mb=256,
        kafka_topic_partitions=2,
    )
    properties = kafka_server_properties(base)
    properties = properties.replace(
        f"listeners=PLAINTEXT://127.0.0.1:{plain},",
        f"listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl},",
    ).replace(
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{plain}\n",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}\n",
    )
    properties = properties.replace(
        "PLAINTEXT:PLAINTEXT\n", "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT\n"
    )
    properties += (
        "sasl.enabled.mechanisms=SCRAM-SHA-512\n"
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;\n"
    )
    assert f"SASL_PLAINTEXT://127.0.0.1:{sasl}" in properties.split("advertised.listeners=")[1]
    home = kafka_dir(base)
    (home / "data").mkdir(parents=True)
    config = home / "server.properties"
    config.write_text(properties)
    (home / "log4j2.properties").write_text("rootLogger.level = WARN\n")
    subprocess.run(
        [
            *_kafka_jvm(base),
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={_kafka_cluster_id()}",
            "-c",
            str(config),
            "--add-scram",
            f"SCRAM-SHA-512=[name={USER},password={PASSWORD}]",
        ],
        check=True,
        capture_output=True,
    )
    log = state / "broker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*_kafka_jvm(base), "kafka.Kafka", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        bootstrap = f"127.0.0.1:{sasl}"
        _wait_ready(process, bootstrap, log)
        yield Settings(
            state_dir=state,
            kafka_bootstrap=bootstrap,
            kafka_topic_partitions=2,
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username=USER,
            kafka_sasl_password=PASSWORD,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_clients_built_from_the_settings_round_trip_a_message_over_scram(
    scram_broker: Settings,
) -> None:
    settings = scram_broker
    assert GAME_EVENTS in ensure_topics(settings)  # kafka-python admin, authenticated
    payload = uuid.uuid4().hex.encode()

    async def produce() -> None:
        producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(GAME_EVENTS, payload, key=b"k", partition=0)
        finally:
            await producer.stop()

    asyncio.run(produce())
    consumer = KafkaConsumer(**kafka_python_options(settings), consumer_timeout_ms=20_000)
    try:
        partition = TopicPartition(GAME_EVENTS, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        values = [record.value for record in consumer]
        assert values == [payload]
    finally:
        consumer.close()


def test_a_wrong_password_fails_with_a_clear_error(
    scram_broker: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = scram_broker.model_copy(update={"kafka_sasl_password": SecretStr("not-the-password")})
    with pytest.raises(KafkaConnectionError) as raised:
        ensure_topics(wrong)
    message = str(raised.value)
    assert f"at {wrong.kafka_bootstrap} (SASL_PLAINTEXT, SCRAM-SHA-512 as '{USER}')" in message
    assert "check STRIDE_KAFKA_BOOTSTRAP" in message and "STRIDE_KAFKA_SASL_PASSWORD" in message
    assert "not-the-password" not in message
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in caplog.text

    async def produce() -> None:  # aiokafka (API, chain publisher, Faust): refused at start
        producer = AIOKafkaProducer(**aiokafka_options(wrong), request_timeout_ms=5_000)
        try:
            await producer.start()
        finally:
            await producer.stop()

    caplog.clear()
    with pytest.raises(AioKafkaError):
        asyncio.run(produce())
    assert "Authentication failed" in caplog.text
