"""Clients built from the security settings against a real Apache Kafka broker with a
SASL_PLAINTEXT and a SASL_SSL listener (TLS with a certificate of a CA made here, as MSK's
TLS listener is to its clients) and SCRAM-SHA-512 users (the same jars as ``stride up kafka``).

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


def _write_tls_files(folder: Path) -> tuple[Path, Path]:
    """A CA and the broker's certificate for 127.0.0.1 signed by it: (the CA's PEM, the
    broker's PEM keystore: its unencrypted PKCS#8 key and its certificate chain)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stride test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file, keystore = folder / "ca.pem", folder / "broker-keystore.pem"
    ca_file.write_bytes(ca.public_bytes(pem))
    keystore.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(pem)
        + ca.public_bytes(pem)
    )
    return ca_file, keystore


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
def brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Settings]]:
    """Settings of clients of a fresh broker's SCRAM-SHA-512 listeners (user ``USER``):
    ``sasl`` (SASL_PLAINTEXT) and ``tls`` (SASL_SSL, the test CA in the settings)."""
    state = tmp_path_factory.mktemp("kafka-scram")
    plain, sasl, tls = free_port(), free_port(), free_port()
    ca_file, keystore = _write_tls_files(state)
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
        f"listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl},"
        f"SASL_SSL://127.0.0.1:{tls},",
    ).replace(
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{plain}\n",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl},"
        f"SASL_SSL://127.0.0.1:{tls}\n",
    )
    properties = properties.replace(
        "PLAINTEXT:PLAINTEXT\n",
        "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\n",
    )
    properties += (
        "sasl.enabled.mechanisms=SCRAM-SHA-512\n"
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;\n"
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;\n"
        "ssl.keystore.type=PEM\n"
        f"ssl.keystore.location={keystore}\n"
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
        client = Settings(
            state_dir=state,
            kafka_bootstrap=bootstrap,
            kafka_topic_partitions=2,
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username=USER,
            kafka_sasl_password=PASSWORD,
        )
        yield {
            "sasl": client,
            "tls": client.model_copy(
                update={
                    "kafka_bootstrap": f"127.0.0.1:{tls}",
                    "kafka_security_protocol": "SASL_SSL",
                    "kafka_ssl_cafile": ca_file,
                }
            ),
        }
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def scram_broker(brokers: dict[str, Settings]) -> Settings:
    return brokers["sasl"]


@pytest.mark.parametrize("listener", ["sasl", "tls"])
def test_clients_built_from_the_settings_round_trip_a_message_over_scram(
    brokers: dict[str, Settings], listener: str
) -> None:
    settings = brokers[listener]
    ensure_topics(settings)  # kafka-python admin, authenticated (created by the first run)
    admin = KafkaConsumer(**kafka_python_options(settings))
    try:
        assert GAME_EVENTS in admin.topics()
    finally:
        admin.close()
    payload = uuid.uuid4().hex.encode()
    partition_number = 0 if listener == "sasl" else 1  # each run reads back its own record

    async def produce() -> None:
        producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(GAME_EVENTS, payload, key=b"k", partition=partition_number)
        finally:
            await producer.stop()

    asyncio.run(produce())
    consumer = KafkaConsumer(**kafka_python_options(settings), consumer_timeout_ms=20_000)
    try:
        partition = TopicPartition(GAME_EVENTS, partition_number)
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
    # the broker's reason, when kafka-python read it before the broker closed the connection
    # (under load it sometimes sees only the disconnect; the error above holds either way)
    assert (
        "invalid credentials with SASL mechanism SCRAM-SHA-512" in caplog.text
        or "socket disconnected" in caplog.text
    )

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


def test_a_broker_certificate_the_client_does_not_trust_is_refused_with_the_setting_named(
    brokers: dict[str, Settings], caplog: pytest.LogCaptureFixture
) -> None:
    """Without the CA (the system's trust store only) TLS fails before any credential is
    sent, and the error names the setting to fix."""
    untrusting = brokers["tls"].model_copy(update={"kafka_ssl_cafile": None})
    with pytest.raises(KafkaConnectionError) as raised:
        ensure_topics(untrusting)
    message = str(raised.value)
    assert f"at {untrusting.kafka_bootstrap} (SASL_SSL, SCRAM-SHA-512 as '{USER}')" in message
    assert "STRIDE_KAFKA_SSL_CAFILE" in message
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text or "certificate verify failed" in caplog.text
