"""Transaction signing behind one interface: a local private key (the embedded default, the
key generated into the state folder) or an AWS KMS ``ECC_SECG_P256K1`` key (production:
the key never leaves KMS). The chain writer only sees :class:`Signer`.

KMS signs a 32-byte digest (``MessageType=DIGEST``) and answers a DER ``(r, s)``; Ethereum
needs ``s`` in the lower half of the curve order (EIP-2) and the recovery id ``v``, which
is found by recovering the public key with each candidate and keeping the one that gives
the key's address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key
from eth_account import Account
from eth_account._utils.signing import encode_transaction
from eth_account.typed_transactions import TypedTransaction
from eth_keys import KeyAPI
from eth_utils import keccak, to_checksum_address

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True)
class SignedTx:
    raw: bytes
    tx_hash: str  # 0x-prefixed, lower case


class Signer(Protocol):
    """Signs EIP-1559 transactions for one address."""

    @property
    def address(self) -> str: ...

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTx: ...


class SignerError(RuntimeError):
    """The key cannot sign (KMS refused, wrong key type, a signature that does not recover)."""


class LocalKeySigner:
    """A private key held by the process (from STRIDE_WRITER_PRIVATE_KEY or the local
    stack's generated secrets)."""

    def __init__(self, private_key: str) -> None:
        self._account = Account.from_key(private_key)

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTx:
        signed = self._account.sign_transaction(tx)
        return SignedTx(bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex())


class KmsClient(Protocol):
    """The two calls of boto3's KMS client the signer makes."""

    def get_public_key(self, *, KeyId: str) -> dict[str, Any]: ...

    def sign(self, **kwargs: Any) -> dict[str, Any]: ...


def address_of_der_public_key(der: bytes) -> str:
    """EIP-55 address of a DER SubjectPublicKeyInfo secp256k1 key (what KMS returns)."""
    key = load_der_public_key(der)
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256k1":
        raise SignerError("the KMS key is not an ECC_SECG_P256K1 key")
    numbers = key.public_numbers()
    raw = numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
    return to_checksum_address(keccak(raw)[-20:])


def vrs_from_der(digest: bytes, der_signature: bytes, address: str) -> tuple[int, int, int]:
    """(v in {0, 1}, r, low s) of a DER ECDSA signature of ``digest`` by ``address``."""
    r, s = decode_dss_signature(der_signature)
    if s > SECP256K1_N // 2:
        s = SECP256K1_N - s  # EIP-2: the other, equally valid, low-s signature
    for v in (0, 1):
        try:
            recovered = KeyAPI.Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest)
        except Exception:  # noqa: S112 - a candidate v that does not recover
            continue
        if recovered.to_checksum_address() == address:
            return v, r, s
    raise SignerError("the KMS signature does not recover to the key's address")


class KmsSigner:
    """An AWS KMS asymmetric key (KeySpec ECC_SECG_P256K1, KeyUsage SIGN_VERIFY)."""

    def __init__(self, client: KmsClient, key_id: str) -> None:
        self._client = client
        self._key_id = key_id
        der = client.get_public_key(KeyId=key_id)["PublicKey"]
        self._address = address_of_der_public_key(der)

    @property
    def address(self) -> str:
        return self._address

    def sign_digest(self, digest: bytes) -> tuple[int, int, int]:
        answer = self._client.sign(
            KeyId=self._key_id,
            Message=digest,
            MessageType="DIGEST",
            SigningAlgorithm="ECDSA_SHA_256",
        )
        return vrs_from_der(digest, answer["Signature"], self._address)

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTx:
        unsigned = TypedTransaction.from_dict(tx)
        vrs = self.sign_digest(unsigned.hash())
        raw = encode_transaction(unsigned, vrs=vrs)
        return SignedTx(bytes(raw), "0x" + keccak(raw).hex())


def signer_from_settings(settings: Any) -> Signer:
    """The writer's signer from ``WriterSettings``: ``local`` or ``kms``."""
    if settings.writer_signer == "kms":
        if not settings.writer_kms_key_id:
            raise SignerError("STRIDE_WRITER_SIGNER=kms needs STRIDE_WRITER_KMS_KEY_ID")
        import boto3

        client = boto3.client(
            "kms",
            region_name=settings.writer_kms_region,
            endpoint_url=settings.writer_kms_endpoint_url,
        )
        return KmsSigner(client, settings.writer_kms_key_id)
    return LocalKeySigner(settings.writer_key())
