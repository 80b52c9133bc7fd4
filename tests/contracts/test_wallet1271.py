"""OwnedWallet1271: a minimal EIP-1271 smart-contract wallet answers the magic value only for
its owner's signature, and only its owner acts through it or hands it over."""

from __future__ import annotations

from types import SimpleNamespace

from eth_account import Account
from eth_account.messages import encode_defunct
from web3 import Web3

from core.identity.siwe import message_hash
from tests.contracts.conftest import deploy_artifact, fund, reverts, send

MAGIC = bytes.fromhex("1626ba7e")
INVALID = bytes.fromhex("ffffffff")


def _signature(account: object, text: str) -> bytes:
    return bytes(account.sign_message(encode_defunct(text=text)).signature)  # type: ignore[attr-defined]


def test_only_the_owners_signature_is_valid(w3: Web3, accounts: SimpleNamespace) -> None:
    fund(w3, accounts.alice.address)
    wallet = deploy_artifact(w3, "OwnedWallet1271", accounts.alice.address, accounts.alice.address)
    text = "stride.test wants you to sign in"
    digest = message_hash(text)
    check = wallet.functions.isValidSignature
    assert check(digest, _signature(accounts.alice, text)).call() == MAGIC
    assert check(digest, _signature(accounts.bob, text)).call() == INVALID
    assert check(message_hash(text + "!"), _signature(accounts.alice, text)).call() == INVALID
    assert check(digest, b"\x01" * 64).call() == INVALID  # not a 65-byte signature
    assert check(digest, b"").call() == INVALID


def test_only_the_owner_acts_and_hands_over(w3: Web3, accounts: SimpleNamespace) -> None:
    fund(w3, accounts.alice.address)
    fund(w3, accounts.bob.address)
    wallet = deploy_artifact(w3, "OwnedWallet1271", accounts.alice.address, accounts.alice.address)
    with reverts("NotOwner"):
        send(wallet.functions.setOwner(accounts.bob.address), accounts.bob)
    with reverts("ZeroOwner"):
        send(wallet.functions.setOwner("0x" + "00" * 20), accounts.alice)
    send(wallet.functions.setOwner(accounts.bob.address), accounts.alice)
    assert wallet.functions.owner().call() == accounts.bob.address
    text = "hand over"
    assert (
        wallet.functions.isValidSignature(
            message_hash(text), _signature(accounts.alice, text)
        ).call()
        == INVALID
    )
    # The owner uses it as an account: a call forwarded through execute.
    fund(w3, wallet.address)
    stranger = Account.create().address
    with reverts("NotOwner"):
        send(wallet.functions.execute(stranger, b"", 10), accounts.alice)
    send(wallet.functions.execute(stranger, b"", 10), accounts.bob)
    assert w3.eth.get_balance(stranger) == 10
