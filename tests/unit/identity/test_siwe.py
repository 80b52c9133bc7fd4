"""EIP-4361 messages (core.identity.siwe): Spruce's official vectors, then every refusal of
this server's checks (domain, URI, chain, times, signature)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from core.identity.siwe import (
    BadSignature,
    Expectations,
    Expired,
    IssuedInFuture,
    MalformedMessage,
    NotYetValid,
    SiweMessage,
    WrongChain,
    WrongDomain,
    WrongUri,
    check_message,
    message_hash,
    parse_message,
    recover_signer,
    signature_bytes,
)

# Spruce's EIP-4361 test vectors, verbatim (sources and license in SOURCES.md there).
VECTORS = Path(__file__).resolve().parents[2] / "fixtures" / "siwe"


def _vectors(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text())


def render(fields: dict[str, Any]) -> str:
    """A message from the vectors' JSON fields, written independently of SiweMessage.text."""
    prefix = f"{fields['scheme']}://" if fields.get("scheme") else ""
    lines = [
        f"{prefix}{fields.get('domain', '')} wants you to sign in with your Ethereum account:",
        fields.get("address", ""),
        "",
    ]
    if fields.get("statement") is not None:
        lines.append(fields["statement"])
    lines.append("")
    for label, key in (
        ("URI", "uri"),
        ("Version", "version"),
        ("Chain ID", "chainId"),
        ("Nonce", "nonce"),
        ("Issued At", "issuedAt"),
        ("Expiration Time", "expirationTime"),
        ("Not Before", "notBefore"),
        ("Request ID", "requestId"),
    ):
        if key in fields:
            lines.append(f"{label}: {fields[key]}")
    if fields.get("resources"):
        lines.append("Resources:")
        lines += [f"- {r}" for r in fields["resources"]]
    return "\n".join(lines)


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.upper())


def _fields_of(message: SiweMessage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "domain": message.domain,
        "address": message.address,
        "uri": message.uri,
        "version": message.version,
        "chainId": message.chain_id,
        "nonce": message.nonce,
        "issuedAt": message.issued_at_text,
    }
    optional = {
        "scheme": message.scheme,
        "statement": message.statement,
        "expirationTime": message.expiration_time_text,
        "notBefore": message.not_before_text,
        "requestId": message.request_id,
        "resources": list(message.resources) or None,
    }
    return out | {k: v for k, v in optional.items() if v is not None}


# ---- the official vectors ------------------------------------------------------------------

POSITIVE = _vectors("parsing_positive.json")


@pytest.mark.parametrize("name", sorted(POSITIVE))
def test_parses_every_positive_vector_field_by_field_and_back(name: str) -> None:
    vector = POSITIVE[name]
    message = parse_message(vector["message"])
    assert _fields_of(message) == {k: v for k, v in vector["fields"].items() if v is not None}
    assert message.text() == vector["message"]
    assert render(vector["fields"]) == vector["message"]


NEGATIVE = _vectors("parsing_negative.json")


@pytest.mark.parametrize("name", sorted(NEGATIVE))
def test_refuses_every_negative_vector(name: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_message(NEGATIVE[name])


NEGATIVE_OBJECTS = _vectors("parsing_negative_objects.json")


@pytest.mark.parametrize("name", sorted(NEGATIVE_OBJECTS))
def test_refuses_every_negative_object_once_written_out(name: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_message(render(NEGATIVE_OBJECTS[name]))


def _vector_expectations(fields: dict[str, Any], domain: str | None = None) -> Expectations:
    return Expectations(
        domain=domain or fields["domain"],
        uri=fields["uri"],
        chain_ids=frozenset({fields["chainId"]}),
        clock_skew=timedelta(0),
        max_age=timedelta(days=365 * 300),  # the vectors were signed in 2022
    )


VERIFY_POSITIVE = _vectors("verification_positive.json")


@pytest.mark.parametrize("name", sorted(VERIFY_POSITIVE))
def test_every_positive_verification_vector_is_signed_by_its_address(name: str) -> None:
    fields = VERIFY_POSITIVE[name]
    text = render({k: v for k, v in fields.items() if k not in ("signature", "time")})
    message = parse_message(text)
    assert recover_signer(text, signature_bytes(fields["signature"])) == fields["address"]
    now = _iso(fields["time"]) if "time" in fields else datetime.now(UTC)
    if now < message.issued_at:
        # Stride refuses a message issued after "now" (beyond the clock skew); the reference
        # accepts this vector, whose "time" precedes its Issued At.
        with pytest.raises(IssuedInFuture):
            check_message(message, _vector_expectations(fields), now)
    else:
        check_message(message, _vector_expectations(fields), now)


VERIFY_NEGATIVE = _vectors("verification_negative.json")
REFUSAL_OF = {
    "expired message": Expired,
    "domain binding": WrongDomain,
    "custom time": Expired,
    "not yet valid": NotYetValid,
    "invalid issuedAt": MalformedMessage,
    "invalid notBefore": MalformedMessage,
    "invalid expirationTime": MalformedMessage,
    "malformed signature": BadSignature,
    "wrong signature": BadSignature,
    # The nonce is checked against storage (core.identity.wallets): the integration tests
    # refuse a message whose nonce was not issued to the user.
    "custom nonce": None,
}


def _verify_vector(fields: dict[str, Any]) -> None:
    text = render(
        {
            k: v
            for k, v in fields.items()
            if k not in ("signature", "time", "domainBinding", "matchNonce")
        }
    )
    message = parse_message(text)
    now = _iso(fields["time"]) if "time" in fields else datetime.now(UTC)
    check_message(message, _vector_expectations(fields, fields.get("domainBinding")), now)
    if recover_signer(text, signature_bytes(fields["signature"])) != message.address:
        raise BadSignature("not the address's signature")


@pytest.mark.parametrize("name", sorted(VERIFY_NEGATIVE))
def test_every_negative_verification_vector_is_refused_for_its_reason(name: str) -> None:
    assert set(REFUSAL_OF) == set(VERIFY_NEGATIVE)
    refusal = REFUSAL_OF[name]
    fields = VERIFY_NEGATIVE[name]
    if refusal is None:
        assert fields["matchNonce"] != fields["nonce"]
        return
    with pytest.raises(refusal):
        _verify_vector(fields)


# ---- this server's checks ----------------------------------------------------------------------

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EXPECTED = Expectations(
    domain="app.stride.test",
    uri="https://app.stride.test",
    chain_ids=frozenset({31337, 8453}),
    clock_skew=timedelta(seconds=60),
    max_age=timedelta(minutes=10),
)
ADDRESS = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"


def message(**overrides: Any) -> SiweMessage:
    fields: dict[str, Any] = {
        "domain": "app.stride.test",
        "address": ADDRESS,
        "uri": "https://app.stride.test/login",
        "chain_id": 31337,
        "nonce": "abcdefgh1234",
        "issued_at": NOW - timedelta(seconds=5),
    }
    return SiweMessage(**(fields | overrides))


def test_a_message_for_this_server_now_passes() -> None:
    check_message(message(), EXPECTED, NOW)
    check_message(message(domain="APP.Stride.test"), EXPECTED, NOW)  # host names ignore case
    check_message(message(uri="https://app.stride.test"), EXPECTED, NOW)
    check_message(message(uri="https://app.stride.test?x=1"), EXPECTED, NOW)
    check_message(message(chain_id=8453), EXPECTED, NOW)
    check_message(message(scheme="https"), EXPECTED, NOW)


@pytest.mark.parametrize(
    ("overrides", "refusal", "code"),
    [
        ({"domain": "evil.test"}, WrongDomain, "siwe_wrong_domain"),
        ({"domain": "app.stride.test:8443"}, WrongDomain, "siwe_wrong_domain"),
        ({"scheme": "http"}, WrongDomain, "siwe_wrong_domain"),
        ({"uri": "https://evil.test/login"}, WrongUri, "siwe_wrong_uri"),
        ({"uri": "https://app.stride.test.evil.test/"}, WrongUri, "siwe_wrong_uri"),
        ({"uri": "https://app.stride.testx"}, WrongUri, "siwe_wrong_uri"),
        ({"chain_id": 1}, WrongChain, "siwe_wrong_chain"),
        ({"issued_at": NOW + timedelta(seconds=61)}, IssuedInFuture, "siwe_issued_in_future"),
        ({"issued_at": NOW - timedelta(minutes=11, seconds=1)}, Expired, "siwe_expired"),
        ({"expiration_time": NOW - timedelta(seconds=61)}, Expired, "siwe_expired"),
        ({"not_before": NOW + timedelta(seconds=61)}, NotYetValid, "siwe_not_yet_valid"),
    ],
)
def test_each_rule_refuses_with_its_code(
    overrides: dict[str, Any], refusal: type[Exception], code: str
) -> None:
    with pytest.raises(refusal) as caught:
        check_message(message(**overrides), EXPECTED, NOW)
    assert getattr(caught.value, "code", None) == code


def test_times_within_the_clock_skew_pass() -> None:
    skew = timedelta(seconds=59)
    check_message(message(issued_at=NOW + skew), EXPECTED, NOW)
    check_message(message(expiration_time=NOW - skew), EXPECTED, NOW)
    check_message(message(not_before=NOW + skew), EXPECTED, NOW)


def test_a_message_signed_by_its_key_recovers_to_its_address() -> None:
    account = Account.create()
    text = message(address=account.address).text()
    signature = bytes(account.sign_message(encode_defunct(text=text)).signature)
    assert parse_message(text) == message(
        address=account.address, issued_at_text=parse_message(text).issued_at_text
    )
    assert recover_signer(text, signature) == account.address
    assert recover_signer(text + " ", signature) != account.address
    assert recover_signer(text, signature[:64]) is None  # not an ECDSA signature
    assert recover_signer(text, b"\x00" * 65) is None
    assert len(message_hash(text)) == 32


@pytest.mark.parametrize("signature", ["", "0x", "0xabc", "0xzz", "abc"])
def test_a_signature_that_is_not_hex_bytes_is_refused(signature: str) -> None:
    with pytest.raises(BadSignature):
        signature_bytes(signature)


def test_a_message_that_is_too_long_is_malformed() -> None:
    with pytest.raises(MalformedMessage, match="longer than"):
        parse_message(message(statement="x" * 9000).text())


def test_trailing_text_or_crlf_line_breaks_are_malformed() -> None:
    text = message().text()
    for broken in (text + "\n", text.replace("\n", "\r\n"), "\n" + text):
        with pytest.raises(MalformedMessage):
            parse_message(broken)
