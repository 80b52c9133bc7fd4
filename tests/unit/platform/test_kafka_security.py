"""The Kafka security settings: impossible combinations refused, and each library's arguments."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import certifi
import faust
import pytest
from pydantic import ValidationError

from core.platform.config import KafkaSettings
from core.platform.kafka_security import (
    AiokafkaMskTokenProvider,
    KafkaPythonMskTokenProvider,
    MskIamToken,
    aiokafka_options,
    faust_options,
    kafka_python_options,
    security_of,
    tls_context_for_probe,
)

BOOTSTRAP = "b-1.msk:9098,b-2.msk:9098"


def kafka(**values: object) -> KafkaSettings:
    return KafkaSettings(kafka_bootstrap=BOOTSTRAP, **values)  # type: ignore[arg-type]


def scram(protocol: str = "SASL_SSL") -> KafkaSettings:
    return kafka(
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="stride",
        kafka_sasl_password="s3cret-pw",
    )


def msk_iam() -> KafkaSettings:
    return kafka(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="OAUTHBEARER",
        kafka_msk_iam_region="eu-west-1",
    )


def test_the_default_is_plaintext_without_sasl() -> None:
    for options in (aiokafka_options(kafka()), kafka_python_options(kafka())):
        assert options == {"bootstrap_servers": BOOTSTRAP, "security_protocol": "PLAINTEXT"}
    assert faust_options(kafka()) == {
        "broker": "kafka://b-1.msk:9098;kafka://b-2.msk:9098",
        "broker_credentials": None,
    }
    assert tls_context_for_probe(kafka()) is None


@pytest.mark.parametrize("cafile", [None, Path(certifi.where())])
def test_ssl_gives_a_verifying_context(cafile: Path | None) -> None:
    settings = kafka(kafka_security_protocol="SSL", kafka_ssl_cafile=cafile)
    for options in (aiokafka_options(settings), kafka_python_options(settings)):
        assert options["security_protocol"] == "SSL"
        context = options["ssl_context"]
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert "sasl_mechanism" not in options
    credentials = faust_options(settings)["broker_credentials"]
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.protocol.value == "SSL"
    assert tls_context_for_probe(settings) is not None


def test_scram_over_tls_maps_to_every_library() -> None:
    settings = scram()
    for options in (aiokafka_options(settings), kafka_python_options(settings)):
        assert options["security_protocol"] == "SASL_SSL"
        assert options["sasl_mechanism"] == "SCRAM-SHA-512"
        assert options["sasl_plain_username"] == "stride"
        assert options["sasl_plain_password"] == "s3cret-pw"
        assert isinstance(options["ssl_context"], ssl.SSLContext)
    credentials = faust_options(settings)["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.protocol.value, credentials.mechanism.value) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
    )
    assert (credentials.username, credentials.password) == ("stride", "s3cret-pw")


def test_scram_without_tls_has_no_ssl_context() -> None:
    settings = scram("SASL_PLAINTEXT")
    options = kafka_python_options(settings)
    assert options["security_protocol"] == "SASL_PLAINTEXT" and "ssl_context" not in options
    credentials = faust_options(settings)["broker_credentials"]
    assert credentials.protocol.value == "SASL_PLAINTEXT"


def test_msk_iam_maps_to_oauthbearer_with_a_token_provider_per_library() -> None:
    settings = msk_iam()
    aio = aiokafka_options(settings)
    assert (aio["security_protocol"], aio["sasl_mechanism"]) == ("SASL_SSL", "OAUTHBEARER")
    assert isinstance(aio["sasl_oauth_token_provider"], AiokafkaMskTokenProvider)
    assert aio["sasl_oauth_token_provider"].tokens.region == "eu-west-1"
    sync = kafka_python_options(settings)
    assert isinstance(sync["sasl_oauth_token_provider"], KafkaPythonMskTokenProvider)
    assert "sasl_plain_password" not in sync
    credentials = faust_options(settings)["broker_credentials"]
    assert isinstance(credentials, faust.OAuthCredentials)
    assert (credentials.protocol.value, credentials.mechanism.value) == (
        "SASL_SSL",
        "OAUTHBEARER",
    )
    assert isinstance(credentials.oauth_cb, AiokafkaMskTokenProvider)


def test_msk_tokens_are_reused_until_a_minute_before_they_expire() -> None:
    now = [1_000.0]
    signed: list[str] = []

    def sign(region: str) -> tuple[str, int]:
        signed.append(region)
        return f"token-{len(signed)}", int((now[0] + 900) * 1000)  # 15 minutes, as MSK's

    tokens = MskIamToken("eu-west-1", sign=sign, clock=lambda: now[0])
    assert tokens() == tokens() == "token-1"
    now[0] += 839  # 61 s before expiry
    assert KafkaPythonMskTokenProvider(tokens).token() == "token-1"
    now[0] += 2  # 59 s before expiry: renewed
    assert asyncio.run(AiokafkaMskTokenProvider(tokens).token()) == "token-2"
    assert signed == ["eu-west-1", "eu-west-1"]


def test_the_msk_signer_signs_with_the_processes_aws_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real signer (no network: a SigV4 presigned URL), with static test credentials."""
    import base64

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    token = MskIamToken("eu-west-1")()
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    assert url.startswith("https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect")
    assert "X-Amz-Credential=AKIDEXAMPLE" in url and "X-Amz-Signature=" in url


def test_the_password_is_never_in_a_repr() -> None:
    settings = scram()
    assert "s3cret-pw" not in repr(settings) and "s3cret-pw" not in str(settings)
    assert "s3cret-pw" not in repr(security_of(settings))
    assert "s3cret-pw" not in repr(faust_options(settings)["broker_credentials"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "needs STRIDE_KAFKA_SASL_MECHANISM"),
        ({"kafka_sasl_mechanism": "SCRAM-SHA-512"}, "needs STRIDE_KAFKA_SECURITY_PROTOCOL"),
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-512"},
            "needs STRIDE_KAFKA_SASL_USERNAME and STRIDE_KAFKA_SASL_PASSWORD",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_sasl_username": "stride"},
            "used only with STRIDE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
        ),
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "OAUTHBEARER"},
            "needs STRIDE_KAFKA_MSK_IAM_REGION",
        ),
        (
            {
                "kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_mechanism": "OAUTHBEARER",
                "kafka_msk_iam_region": "eu-west-1",
            },
            "needs STRIDE_KAFKA_SECURITY_PROTOCOL=SASL_SSL, not SASL_PLAINTEXT",
        ),
        ({"kafka_msk_iam_region": "eu-west-1"}, "used only with STRIDE_KAFKA_SASL_MECHANISM"),
        ({"kafka_ssl_cafile": "/etc/hosts"}, "used only with SSL or SASL_SSL, not PLAINTEXT"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/nonexistent/ca.pem"},
            "STRIDE_KAFKA_SSL_CAFILE: no file /nonexistent/ca.pem",
        ),
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
        ({"kafka_sasl_mechanism": "PLAIN"}, "kafka_sasl_mechanism"),
    ],
)
def test_impossible_combinations_are_refused_naming_the_variables(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        kafka(**values)


def test_the_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIDE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STRIDE_KAFKA_SASL_MECHANISM", "OAUTHBEARER")
    monkeypatch.setenv("STRIDE_KAFKA_MSK_IAM_REGION", "us-east-1")
    options = kafka_python_options(KafkaSettings())
    assert options["sasl_oauth_token_provider"].tokens.region == "us-east-1"


@pytest.mark.parametrize("settings", [scram(), scram("SASL_PLAINTEXT"), msk_iam()])
def test_faust_hands_aiokafka_the_same_arguments(settings: KafkaSettings) -> None:
    """What the Faust worker's consumer and producer get (faust's own translation)."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    app = faust.App("stride-test", **faust_options(settings))
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials)
    ours = aiokafka_options(settings)
    for key in ("security_protocol", "sasl_mechanism", "sasl_plain_username"):
        assert auth.get(key) == ours.get(key), key
    assert isinstance(auth.get("ssl_context"), ssl.SSLContext) == ("ssl_context" in ours)
    if settings.kafka_sasl_mechanism == "OAUTHBEARER":
        assert isinstance(auth["sasl_oauth_token_provider"], AiokafkaMskTokenProvider)
