"""Sign-In with Ethereum (EIP-4361) messages: parse, render and check them, pure.

No I/O here: the nonce's state and the EIP-1271 call live in ``core.identity.wallets``.
The grammar is the EIP's ABNF, written as one anchored regular expression per element
(RFC 3986 authority and URI, RFC 3339 date-time, EIP-55 address), and is tested against
Spruce's official vectors (``tests/unit/identity/test_siwe.py``). The reference PyPI
``siwe`` 4.4.0 is not used: it requires ``eth-account<0.14`` and the lock has 0.14.0.

Every refusal is a :class:`SiweError` with a stable ``code`` the API answers with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from eth_account import Account
from eth_account.messages import defunct_hash_message, encode_defunct
from eth_utils import is_checksum_address

from core.platform.errors import Forbidden, Invalid

MAX_MESSAGE_CHARS = 8192

# ---- the grammar (EIP-4361 ABNF; RFC 3986; RFC 3339) --------------------------------------

_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*"
_USERINFO = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*"
_IP_LITERAL = r"\[(?:[0-9A-Fa-f:.]+|[vV][0-9A-Fa-f]+\.[" + _UNRESERVED + _SUB_DELIMS + r":]+)\]"
_REG_NAME = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})+"
_AUTHORITY = rf"(?:{_USERINFO}@)?(?:{_IP_LITERAL}|{_REG_NAME})(?::[0-9]*)?"
# Any character a URI may hold (RFC 3986 reserved, unreserved and percent signs).
_URI = rf"{_SCHEME}:(?:[{_UNRESERVED}{_SUB_DELIMS}:/?#\[\]@]|{_PCT})*"
_STATEMENT = rf"[{_UNRESERVED}:/?#\[\]@{_SUB_DELIMS} ]*"
_DATE_TIME = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"

_MESSAGE = re.compile(
    rf"(?:(?P<scheme>{_SCHEME})://)?(?P<domain>{_AUTHORITY})"
    r" wants you to sign in with your Ethereum account:\n"
    r"(?P<address>0x[0-9a-fA-F]{40})\n"
    r"\n"
    rf"(?:(?P<statement>{_STATEMENT})\n)?"
    r"\n"
    rf"URI: (?P<uri>{_URI})\n"
    r"Version: (?P<version>1)\n"
    r"Chain ID: (?P<chain_id>[0-9]+)\n"
    r"Nonce: (?P<nonce>[A-Za-z0-9]{8,})\n"
    rf"Issued At: (?P<issued_at>{_DATE_TIME})"
    rf"(?:\nExpiration Time: (?P<expiration_time>{_DATE_TIME}))?"
    rf"(?:\nNot Before: (?P<not_before>{_DATE_TIME}))?"
    rf"(?:\nRequest ID: (?P<request_id>{_PCHAR}*))?"
    rf"(?:\nResources:(?P<resources>(?:\n- {_URI})*))?"
)
_URI_ONLY = re.compile(_URI)
_AUTHORITY_ONLY = re.compile(_AUTHORITY)
_NONCE = re.compile(r"[A-Za-z0-9]{8,}")
_DATE_TIME_ONLY = re.compile(_DATE_TIME)


# ---- refusals ------------------------------------------------------------------------------


class SiweError(Invalid):
    """A sign-in message that cannot be accepted; ``code`` says which rule it broke."""

    code = "siwe_invalid"


class MalformedMessage(SiweError):
    code = "siwe_malformed"


class WrongDomain(SiweError):
    code = "siwe_wrong_domain"


class WrongUri(SiweError):
    code = "siwe_wrong_uri"


class WrongChain(SiweError):
    code = "siwe_wrong_chain"


class Expired(SiweError):
    code = "siwe_expired"


class NotYetValid(SiweError):
    code = "siwe_not_yet_valid"


class IssuedInFuture(SiweError):
    code = "siwe_issued_in_future"


class BadSignature(Forbidden):
    """The signature is not the address's: not its key (EIP-191), not its contract (EIP-1271)."""

    code = "siwe_bad_signature"


# ---- the message ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SiweMessage:
    """One EIP-4361 message, field by field (times as timezone-aware datetimes)."""

    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: datetime
    version: str = "1"
    statement: str | None = None
    scheme: str | None = None
    expiration_time: datetime | None = None
    not_before: datetime | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = field(default_factory=tuple)
    # The timestamps as written: rendering must give back the signed text byte for byte.
    issued_at_text: str | None = None
    expiration_time_text: str | None = None
    not_before_text: str | None = None

    def text(self) -> str:
        """The message as the wallet signs it (EIP-4361 layout)."""
        prefix = f"{self.scheme}://{self.domain}" if self.scheme else self.domain
        lines = [
            f"{prefix} wants you to sign in with your Ethereum account:",
            self.address,
            "",
        ]
        if self.statement is not None:
            lines.append(self.statement)
        lines += [
            "",
            f"URI: {self.uri}",
            f"Version: {self.version}",
            f"Chain ID: {self.chain_id}",
            f"Nonce: {self.nonce}",
            f"Issued At: {self.issued_at_text or _iso(self.issued_at)}",
        ]
        if self.expiration_time is not None:
            lines.append(
                f"Expiration Time: {self.expiration_time_text or _iso(self.expiration_time)}"
            )
        if self.not_before is not None:
            lines.append(f"Not Before: {self.not_before_text or _iso(self.not_before)}")
        if self.request_id is not None:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources:
            lines.append("Resources:")
            lines += [f"- {resource}" for resource in self.resources]
        return "\n".join(lines)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _timestamp(text: str, name: str) -> datetime:
    try:
        return datetime.fromisoformat(text.upper())
    except ValueError as exc:  # the shape matched, the calendar did not (e.g. 31 February)
        raise MalformedMessage(f"{name} {text!r} is not a valid RFC 3339 date-time") from exc


def parse_message(text: str) -> SiweMessage:
    """The fields of an EIP-4361 message; :class:`MalformedMessage` says what is wrong."""
    if len(text) > MAX_MESSAGE_CHARS:
        raise MalformedMessage(f"the message is longer than {MAX_MESSAGE_CHARS} characters")
    match = _MESSAGE.fullmatch(text)
    if match is None:
        raise MalformedMessage(_first_problem(text))
    fields = match.groupdict()
    address = fields["address"]
    if not is_checksum_address(address):
        raise MalformedMessage(
            f"address {address} is not EIP-55 checksummed (mixed case); send it as the "
            "wallet shows it"
        )
    expiration, not_before = fields["expiration_time"], fields["not_before"]
    resources = fields["resources"]
    return SiweMessage(
        scheme=fields["scheme"],
        domain=fields["domain"],
        address=address,
        statement=fields["statement"],
        uri=fields["uri"],
        version=fields["version"],
        chain_id=int(fields["chain_id"]),
        nonce=fields["nonce"],
        issued_at=_timestamp(fields["issued_at"], "Issued At"),
        issued_at_text=fields["issued_at"],
        expiration_time=_timestamp(expiration, "Expiration Time") if expiration else None,
        expiration_time_text=expiration,
        not_before=_timestamp(not_before, "Not Before") if not_before else None,
        not_before_text=not_before,
        request_id=fields["request_id"],
        resources=tuple(line[2:] for line in resources.split("\n")[1:]) if resources else (),
    )


_LINE_RULES = (
    ("URI: ", _URI_ONLY, "URI"),
    ("Nonce: ", _NONCE, "Nonce (at least 8 letters or digits)"),
    ("Issued At: ", _DATE_TIME_ONLY, "Issued At (an RFC 3339 date-time)"),
    ("Expiration Time: ", _DATE_TIME_ONLY, "Expiration Time (an RFC 3339 date-time)"),
    ("Not Before: ", _DATE_TIME_ONLY, "Not Before (an RFC 3339 date-time)"),
)


def _first_problem(text: str) -> str:
    """A one-line reason for a message that does not follow the grammar."""
    lines = text.split("\n")
    header = lines[0]
    suffix = " wants you to sign in with your Ethereum account:"
    if not header.endswith(suffix):
        return f"the first line must end with {suffix.strip()!r}"
    domain = header[: -len(suffix)].split("://", 1)[-1]
    if not domain or not _AUTHORITY_ONLY.fullmatch(domain):
        return f"domain {domain!r} is not an RFC 3986 authority (host[:port])"
    if len(lines) < 2 or not re.fullmatch(r"0x[0-9a-fA-F]{40}", lines[1]):
        return "the second line must be the 0x-prefixed 40-hex-digit address"
    for line in lines:
        for prefix, rule, name in _LINE_RULES:
            if line.startswith(prefix) and not rule.fullmatch(line[len(prefix) :]):
                return f"{name} {line[len(prefix) :]!r} is not valid"
        if line.startswith("Version: ") and line != "Version: 1":
            return "Version must be 1"
        if line.startswith("Chain ID: ") and not line[10:].isdigit():
            return f"Chain ID {line[10:]!r} is not a number"
    return (
        "the message does not follow EIP-4361: the fields URI, Version, Chain ID, Nonce and "
        "Issued At are required, in this order, one per line, then the optional Expiration "
        "Time, Not Before, Request ID and Resources (no line break in the statement)"
    )


# ---- the checks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expectations:
    """What this server accepts: its own domain and URI, its chains, a clock skew."""

    domain: str
    uri: str
    chain_ids: frozenset[int]
    clock_skew: timedelta = timedelta(seconds=60)
    max_age: timedelta = timedelta(minutes=10)


def _same_authority(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def _uri_matches(uri: str, expected: str) -> bool:
    """``uri`` is the expected URI or a resource under it (a path, query or fragment)."""
    if uri == expected:
        return True
    base = expected.rstrip("/")
    return uri.startswith(base) and uri[len(base) : len(base) + 1] in ("/", "?", "#")


def check_message(message: SiweMessage, expected: Expectations, now: datetime) -> None:
    """Refuse a message not meant for this server now (domain, URI, chain, times).

    The nonce's state and the signature are checked by the caller (they need storage and,
    for contract wallets, the chain)."""
    if not _same_authority(message.domain, expected.domain):
        raise WrongDomain(
            f"the message is for domain {message.domain!r}, this server is "
            f"{expected.domain!r}: sign a message for this server"
        )
    expected_scheme = expected.uri.split("://", 1)[0].lower()
    if message.scheme is not None and message.scheme.lower() != expected_scheme:
        raise WrongDomain(
            f"the message is for {message.scheme}://{message.domain}, this server is served "
            f"over {expected_scheme}"
        )
    if not _uri_matches(message.uri, expected.uri):
        raise WrongUri(f"URI {message.uri!r} is not this server's ({expected.uri!r} or below it)")
    if message.chain_id not in expected.chain_ids:
        chains = ", ".join(str(c) for c in sorted(expected.chain_ids))
        raise WrongChain(f"chain {message.chain_id} is not one of this server's chains ({chains})")
    skew = expected.clock_skew
    if message.issued_at > now + skew:
        raise IssuedInFuture(
            f"Issued At {message.issued_at.isoformat()} is in the future; is the device clock set?"
        )
    if message.issued_at < now - expected.max_age - skew:
        raise Expired(
            f"the message was issued at {message.issued_at.isoformat()}, more than "
            f"{expected.max_age} ago: ask for a new nonce and sign again"
        )
    if message.expiration_time is not None and message.expiration_time <= now - skew:
        raise Expired(
            f"the message expired at {message.expiration_time.isoformat()}: ask for a new nonce "
            "and sign again"
        )
    if message.not_before is not None and message.not_before > now + skew:
        raise NotYetValid(f"the message is not valid before {message.not_before.isoformat()}")


# ---- signatures (EIP-191) --------------------------------------------------------------------


def message_hash(text: str) -> bytes:
    """The EIP-191 (``personal_sign``) hash of the message: what an EOA signs and what an
    EIP-1271 wallet's ``isValidSignature`` is asked about."""
    return bytes(defunct_hash_message(text=text))


def signature_bytes(signature: str) -> bytes:
    """The signature's bytes from its 0x-hex form; :class:`BadSignature` when not hex."""
    raw = signature.removeprefix("0x")
    if not raw or len(raw) % 2 or not re.fullmatch(r"[0-9a-fA-F]*", raw):
        raise BadSignature("the signature must be 0x-prefixed hex bytes")
    return bytes.fromhex(raw)


def recover_signer(text: str, signature: bytes) -> str | None:
    """The EOA address that signed ``text`` (EIP-191), or None when ``signature`` is not an
    ECDSA signature (for instance a contract wallet's)."""
    if len(signature) != 65:
        return None
    try:
        signer: str = Account.recover_message(encode_defunct(text=text), signature=signature)
    except Exception:  # eth-keys raises several kinds for an impossible (r, s, v)
        return None
    return signer
