"""How every Kafka client of the platform connects: the ``STRIDE_KAFKA_*`` security settings
turned into each library's arguments (aiokafka, kafka-python, Faust), in one place.

Every construction site (API producer, Faust app, chain publisher, topic admin, lag monitor,
metrics sampler, CLI producers, admin home) spreads :func:`aiokafka_options`,
:func:`kafka_python_options` or :func:`faust_options` into its client, so a new protocol or
mechanism is added here once. MSK IAM is SASL/OAUTHBEARER with a token signed from the
process's AWS credentials by ``aws-msk-iam-sasl-signer-python``; tokens live 15 minutes and
are reused until a minute before they expire.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.abc import AbstractTokenProvider as AsyncTokenProvider
from kafka.net.sasl.oauth import AbstractTokenProvider as SyncTokenProvider

from core.platform.config import KafkaSettings

# A token is renewed this long before the expiry the signer reports.
TOKEN_RENEW_MARGIN_S = 60.0


@dataclass(frozen=True)
class KafkaSecurity:
    """The security half of a Kafka connection, validated by ``KafkaSettings``."""

    protocol: str = "PLAINTEXT"
    mechanism: str = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a repr or a log line
    cafile: Path | None = None
    region: str | None = None

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")


def security_of(settings: KafkaSettings) -> KafkaSecurity:
    password = settings.kafka_sasl_password
    return KafkaSecurity(
        protocol=settings.kafka_security_protocol,
        mechanism=settings.kafka_sasl_mechanism,
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        cafile=settings.kafka_ssl_cafile,
        region=settings.kafka_msk_iam_region,
    )


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext | None:
    """A verifying TLS context (the CA file's, else the system's) or None without TLS."""
    if not security.uses_tls:
        return None
    return ssl.create_default_context(
        cafile=str(security.cafile) if security.cafile is not None else None
    )


class MskIamToken:
    """MSK IAM tokens for one region, signed when needed and reused until near expiry."""

    def __init__(
        self,
        region: str,
        sign: Callable[[str], tuple[str, int]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.region = region
        self._sign = sign or _msk_signer
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - TOKEN_RENEW_MARGIN_S:
                token, expiry_ms = self._sign(self.region)
                self._token, self._expires_at = token, expiry_ms / 1000
            return self._token


def _msk_signer(region: str) -> tuple[str, int]:
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
    return str(token), int(expiry_ms)


class AiokafkaMskTokenProvider(AsyncTokenProvider):
    """aiokafka's (and Faust's) OAUTHBEARER callback; signing runs off the event loop."""

    def __init__(self, tokens: MskIamToken) -> None:
        self.tokens = tokens

    async def token(self) -> str:
        return await asyncio.to_thread(self.tokens)


class KafkaPythonMskTokenProvider(SyncTokenProvider):
    """kafka-python's OAUTHBEARER callback."""

    def __init__(self, tokens: MskIamToken) -> None:
        super().__init__()
        self.tokens = tokens

    def token(self) -> str:
        return self.tokens()


def _common(security: KafkaSecurity) -> dict[str, Any]:
    options: dict[str, Any] = {"security_protocol": security.protocol}
    context = ssl_context(security)
    if context is not None:
        options["ssl_context"] = context
    if security.mechanism == "SCRAM-SHA-512":
        options |= {
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": security.username,
            "sasl_plain_password": security.password,
        }
    elif security.mechanism == "OAUTHBEARER":
        options["sasl_mechanism"] = "OAUTHBEARER"
    return options


def _region(security: KafkaSecurity) -> str:
    if not security.region:  # KafkaSettings refuses this; a hand-built KafkaSecurity may not
        raise ValueError("OAUTHBEARER (MSK IAM) needs STRIDE_KAFKA_MSK_IAM_REGION")
    return security.region


def aiokafka_options(settings: KafkaSettings) -> dict[str, Any]:
    """``bootstrap_servers`` and the security arguments of an aiokafka client."""
    security = security_of(settings)
    options = {"bootstrap_servers": settings.kafka_bootstrap, **_common(security)}
    if security.mechanism == "OAUTHBEARER":
        tokens = MskIamToken(_region(security))
        options["sasl_oauth_token_provider"] = AiokafkaMskTokenProvider(tokens)
    return options


def kafka_python_options(settings: KafkaSettings) -> dict[str, Any]:
    """``bootstrap_servers`` and the security arguments of a kafka-python client."""
    security = security_of(settings)
    options = {"bootstrap_servers": settings.kafka_bootstrap, **_common(security)}
    if security.mechanism == "OAUTHBEARER":
        tokens = MskIamToken(_region(security))
        options["sasl_oauth_token_provider"] = KafkaPythonMskTokenProvider(tokens)
    return options


def faust_options(settings: KafkaSettings) -> dict[str, Any]:
    """``broker`` and ``broker_credentials`` of a ``faust.App`` (faust-streaming 0.15)."""
    import faust

    security = security_of(settings)
    scheme = "kafka"
    broker = ";".join(f"{scheme}://{b.strip()}" for b in settings.kafka_bootstrap.split(","))
    context = ssl_context(security)
    credentials: Any = None
    if security.mechanism == "SCRAM-SHA-512":
        credentials = faust.SASLCredentials(
            username=security.username,
            password=security.password,
            ssl_context=context,
            mechanism="SCRAM-SHA-512",
        )
    elif security.mechanism == "OAUTHBEARER":
        credentials = faust.OAuthCredentials(
            oauth_cb=AiokafkaMskTokenProvider(MskIamToken(_region(security))),
            ssl_context=context,
        )
    elif context is not None:
        credentials = faust.SSLCredentials(context)
    return {"broker": broker, "broker_credentials": credentials}


def describe(settings: KafkaSettings) -> str:
    """Where and how the clients connect, for error messages (never the password)."""
    security = security_of(settings)
    how = security.protocol
    if security.mechanism == "SCRAM-SHA-512":
        how += f", SCRAM-SHA-512 as {security.username!r}"
    elif security.mechanism == "OAUTHBEARER":
        how += f", MSK IAM in {security.region}"
    return f"{settings.kafka_bootstrap} ({how})"


def connection_failure(settings: KafkaSettings) -> str:
    """What to say when no bootstrap broker could be used: the broker is down, or the
    security settings do not match its listener (a refused login looks the same to the
    clients: they log the broker's reason and retry until their timeout)."""
    security = security_of(settings)
    check = ["STRIDE_KAFKA_BOOTSTRAP", "STRIDE_KAFKA_SECURITY_PROTOCOL"]
    if security.mechanism == "SCRAM-SHA-512":
        check += ["STRIDE_KAFKA_SASL_USERNAME", "STRIDE_KAFKA_SASL_PASSWORD"]
    elif security.mechanism == "OAUTHBEARER":
        check += ["STRIDE_KAFKA_MSK_IAM_REGION", "the task role's kafka-cluster:Connect"]
    if security.uses_tls:
        check.append("STRIDE_KAFKA_SSL_CAFILE (the CA that signed the broker's certificate)")
    return (
        f"cannot connect to Kafka at {describe(settings)}: if the broker is up, check "
        + ", ".join(check)
        + " (the client's log line above says what the broker answered)"
    )


def tls_context_for_probe(settings: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context a raw readiness probe wraps its socket in (None: plain TCP)."""
    return ssl_context(security_of(settings))
