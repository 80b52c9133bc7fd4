"""Signers: the local key and the KMS signer sign the same transaction the same way.

moto 5.2's KMS creates ECC_SECG_P256K1 keys and returns their public key, but does not
implement ``MessageType=DIGEST`` (it would hash the digest again). The KMS client here
therefore answers ``Sign`` the way AWS does for a digest: a DER ECDSA signature over the
32 bytes as given, high or low s (both are valid ECDSA; AWS returns either)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes

from core.chain.signer import (
    SECP256K1_N,
    KmsSigner,
    LocalKeySigner,
    SignerError,
    address_of_der_public_key,
)

TX = {
    "type": 2,
    "chainId": 31337,
    "nonce": 7,
    "to": "0x000000000000000000000000000000000000dEaD",
    "value": 0,
    "data": "0x1234",
    "gas": 100_000,
    "maxFeePerGas": 3 * 10**9,
    "maxPriorityFeePerGas": 10**9,
}


class DigestKms:
    """A KMS key that signs digests like AWS KMS (``high_s`` forces the high-s twin)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, high_s: bool = False) -> None:
        self.key = key
        self.high_s = high_s
        self.calls: list[dict[str, Any]] = []

    def get_public_key(self, *, KeyId: str) -> dict[str, Any]:
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"KeyId": KeyId, "PublicKey": der, "KeySpec": "ECC_SECG_P256K1"}

    def sign(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        assert kwargs["MessageType"] == "DIGEST" and kwargs["SigningAlgorithm"] == "ECDSA_SHA_256"
        der = self.key.sign(kwargs["Message"], ec.ECDSA(Prehashed(hashes.SHA256())))
        r, s = decode_dss_signature(der)
        low = min(s, SECP256K1_N - s)
        s = SECP256K1_N - low if self.high_s else low
        return {"Signature": encode_dss_signature(r, s)}


def _key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256K1())
    hex_key = "0x" + key.private_numbers().private_value.to_bytes(32, "big").hex()
    return key, hex_key


@pytest.mark.parametrize("high_s", [False, True])
def test_kms_signature_equals_the_local_keys(high_s: bool) -> None:
    key, hex_key = _key()
    kms = KmsSigner(DigestKms(key, high_s=high_s), "alias/writer")
    local = LocalKeySigner(hex_key)
    assert kms.address == local.address == Account.from_key(hex_key).address
    signed_kms, signed_local = kms.sign_transaction(TX), local.sign_transaction(TX)
    # RFC 6979 nonces make the local signature deterministic; KMS's are random, so compare
    # what matters: same sender recovered, same payload, low s.
    assert Account.recover_transaction(signed_kms.raw) == local.address
    decoded = TypedTransaction.from_bytes(HexBytes(signed_kms.raw))
    v, _r, s = decoded.vrs()
    assert s <= SECP256K1_N // 2 and v in (0, 1)
    assert decoded.as_dict()["nonce"] == 7
    assert signed_kms.tx_hash.startswith("0x") and len(signed_kms.tx_hash) == 66
    assert Account.recover_transaction(signed_local.raw) == local.address


def test_moto_kms_secp256k1_public_key_gives_the_address() -> None:
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    with moto.mock_aws():
        client = boto3.client("kms", region_name="us-east-1")
        key_id = client.create_key(KeySpec="ECC_SECG_P256K1", KeyUsage="SIGN_VERIFY")[
            "KeyMetadata"
        ]["KeyId"]
        der = client.get_public_key(KeyId=key_id)["PublicKey"]
        address = address_of_der_public_key(der)
    assert address.startswith("0x") and len(address) == 42


def test_a_non_secp256k1_key_is_refused() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(SignerError, match="ECC_SECG_P256K1"):
        KmsSigner(DigestKms(other), "k")


def test_a_signature_by_another_key_is_refused() -> None:
    key, _ = _key()
    kms = KmsSigner(DigestKms(key), "k")
    kms._client = DigestKms(ec.generate_private_key(ec.SECP256K1()))  # the key was swapped
    with pytest.raises(SignerError, match="does not recover"):
        kms.sign_transaction(TX)
