"""StrideToken: role-gated mint, holder-authorised burn (allowance and EIP-2612 permit), pause."""

from __future__ import annotations

from types import SimpleNamespace

from eth_account.messages import encode_typed_data
from web3 import Web3

from tests.contracts.conftest import CHAIN_A, E18, now, reverts, role, send


def test_metadata(c: SimpleNamespace) -> None:
    assert c.token.functions.symbol().call() == "STRIDE"
    assert c.token.functions.name().call() == "Stride"
    assert c.token.functions.decimals().call() == 18


def test_minter_mints(c: SimpleNamespace, accounts: SimpleNamespace) -> None:
    send(c.token.functions.mint(accounts.alice.address, 5 * E18), accounts.minter)
    assert c.token.functions.balanceOf(accounts.alice.address).call() == 5 * E18


def test_mint_needs_role(c: SimpleNamespace, accounts: SimpleNamespace) -> None:
    for outsider in (accounts.alice, accounts.deployer):
        with reverts("AccessControlUnauthorizedAccount"):
            send(c.token.functions.mint(outsider.address, 1), outsider)


def test_holder_burns_own_tokens(c: SimpleNamespace, accounts: SimpleNamespace) -> None:
    send(c.token.functions.mint(accounts.alice.address, 5 * E18), accounts.minter)
    send(c.token.functions.burn(2 * E18), accounts.alice)
    assert c.token.functions.balanceOf(accounts.alice.address).call() == 3 * E18
    assert c.token.functions.totalSupply().call() == 3 * E18


def test_burn_from_needs_allowance(c: SimpleNamespace, accounts: SimpleNamespace) -> None:
    alice, backend = accounts.alice, accounts.minter
    send(c.token.functions.mint(alice.address, 5 * E18), backend)
    # Even the minter (the backend) cannot burn a player's tokens without authorisation.
    with reverts("ERC20InsufficientAllowance"):
        send(c.token.functions.burnFrom(alice.address, E18), backend)
    send(c.token.functions.approve(backend.address, E18), alice)
    with reverts("ERC20InsufficientAllowance"):
        send(c.token.functions.burnFrom(alice.address, 2 * E18), backend)
    send(c.token.functions.burnFrom(alice.address, E18), backend)
    assert c.token.functions.balanceOf(alice.address).call() == 4 * E18
    assert c.token.functions.allowance(alice.address, backend.address).call() == 0


def _permit_signature(c: SimpleNamespace, owner, spender: str, value: int, deadline: int):
    message = encode_typed_data(
        domain_data={
            "name": "Stride",
            "version": "1",
            "chainId": CHAIN_A,
            "verifyingContract": c.token.address,
        },
        message_types={
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ]
        },
        message_data={
            "owner": owner.address,
            "spender": spender,
            "value": value,
            "nonce": c.token.functions.nonces(owner.address).call(),
            "deadline": deadline,
        },
    )
    signed = owner.sign_message(message)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


def test_burn_with_permit(c: SimpleNamespace, accounts: SimpleNamespace, w3: Web3) -> None:
    alice, backend = accounts.alice, accounts.minter
    send(c.token.functions.mint(alice.address, 5 * E18), backend)
    deadline = now(w3) + 3600
    v, r, s = _permit_signature(c, alice, backend.address, 2 * E18, deadline)
    send(
        c.token.functions.permit(alice.address, backend.address, 2 * E18, deadline, v, r, s),
        backend,
    )
    send(c.token.functions.burnFrom(alice.address, 2 * E18), backend)
    assert c.token.functions.balanceOf(alice.address).call() == 3 * E18
    # The same signature cannot be used twice (nonce consumed).
    with reverts("ERC2612InvalidSigner"):
        send(
            c.token.functions.permit(alice.address, backend.address, 2 * E18, deadline, v, r, s),
            backend,
        )


def test_permit_rejects_wrong_signer_and_expiry(
    c: SimpleNamespace, accounts: SimpleNamespace, w3: Web3
) -> None:
    alice, bob, backend = accounts.alice, accounts.bob, accounts.minter
    deadline = now(w3) + 3600
    v, r, s = _permit_signature(c, bob, backend.address, E18, deadline)
    with reverts("ERC2612InvalidSigner"):
        send(
            c.token.functions.permit(alice.address, backend.address, E18, deadline, v, r, s),
            backend,
        )
    expired = now(w3) - 1
    v, r, s = _permit_signature(c, alice, backend.address, E18, expired)
    with reverts("ERC2612ExpiredSignature"):
        send(
            c.token.functions.permit(alice.address, backend.address, E18, expired, v, r, s), backend
        )


def test_pause_blocks_transfers_mint_and_burn(
    c: SimpleNamespace, accounts: SimpleNamespace
) -> None:
    alice, bob, admin = accounts.alice, accounts.bob, accounts.deployer
    send(c.token.functions.mint(alice.address, 5 * E18), accounts.minter)
    with reverts("AccessControlUnauthorizedAccount"):
        send(c.token.functions.pause(), alice)
    send(c.token.functions.pause(), admin)
    with reverts("EnforcedPause"):
        send(c.token.functions.transfer(bob.address, E18), alice)
    with reverts("EnforcedPause"):
        send(c.token.functions.mint(alice.address, E18), accounts.minter)
    with reverts("EnforcedPause"):
        send(c.token.functions.burn(E18), alice)
    send(c.token.functions.unpause(), admin)
    send(c.token.functions.transfer(bob.address, E18), alice)
    assert c.token.functions.balanceOf(bob.address).call() == E18


def test_admin_manages_minters(c: SimpleNamespace, accounts: SimpleNamespace) -> None:
    minter_role = role(c.token, "MINTER_ROLE")
    with reverts("AccessControlUnauthorizedAccount"):
        send(c.token.functions.grantRole(minter_role, accounts.alice.address), accounts.alice)
    send(c.token.functions.revokeRole(minter_role, accounts.minter.address), accounts.deployer)
    with reverts("AccessControlUnauthorizedAccount"):
        send(c.token.functions.mint(accounts.alice.address, 1), accounts.minter)
