"""StrideRewardsDistributor: each command id paid at most once (a repeat is skipped, never a
revert of the batch), only the writer's sender may call, burns only with the holder's permit."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from eth_account.messages import encode_typed_data
from web3 import Web3
from web3.logs import DISCARD

from tests.contracts.conftest import CHAIN_A, E18, now, reverts, role, send


def _id() -> bytes:
    return uuid.uuid4().bytes.rjust(32, b"\0")


def _events(contract: Any, receipt: Any, name: str) -> list[Any]:
    return list(getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD))


def test_deployment_wires_the_distributor(c: SimpleNamespace, accounts: SimpleNamespace) -> None:
    assert c.token.functions.hasRole(role(c.token, "MINTER_ROLE"), c.distributor.address).call()
    assert c.distributor.functions.hasRole(
        role(c.distributor, "SENDER_ROLE"), accounts.writer.address
    ).call()
    assert c.distributor.functions.token().call() == c.token.address


def test_mint_batch_pays_each_command_once(c: SimpleNamespace, accounts: SimpleNamespace) -> None:
    alice, bob = accounts.alice.address, accounts.bob.address
    ids = [_id(), _id()]
    receipt = send(
        c.distributor.functions.mintBatch(ids, [alice, bob], [E18, 2 * E18]), accounts.writer
    )
    minted = _events(c.distributor, receipt, "RewardMinted")
    assert [(e.args.commandId, e.args.to, e.args.amount) for e in minted] == [
        (ids[0], alice, E18),
        (ids[1], bob, 2 * E18),
    ]
    assert all(c.distributor.functions.executed(i).call() for i in ids)
    # The same command again: skipped with an event, nothing minted, no revert.
    receipt = send(c.distributor.functions.mintBatch([ids[0]], [alice], [E18]), accounts.writer)
    assert _events(c.distributor, receipt, "RewardMinted") == []
    assert [e.args.commandId for e in _events(c.distributor, receipt, "CommandSkipped")] == [ids[0]]
    assert c.token.functions.balanceOf(alice).call() == E18


def test_resent_batch_completes_only_the_rest(
    c: SimpleNamespace, accounts: SimpleNamespace
) -> None:
    alice = accounts.alice.address
    ids = [_id() for _ in range(5)]
    send(c.distributor.functions.mintBatch(ids[:2], [alice] * 2, [E18] * 2), accounts.writer)
    receipt = send(c.distributor.functions.mintBatch(ids, [alice] * 5, [E18] * 5), accounts.writer)
    assert [e.args.commandId for e in _events(c.distributor, receipt, "CommandSkipped")] == ids[:2]
    assert [e.args.commandId for e in _events(c.distributor, receipt, "RewardMinted")] == ids[2:]
    assert c.token.functions.balanceOf(alice).call() == 5 * E18
    # A repeat inside one batch is skipped too.
    dup = _id()
    receipt = send(
        c.distributor.functions.mintBatch([dup, dup], [alice] * 2, [E18] * 2), accounts.writer
    )
    assert len(_events(c.distributor, receipt, "RewardMinted")) == 1
    assert c.token.functions.balanceOf(alice).call() == 6 * E18


def test_only_the_writer_sender_may_call(c: SimpleNamespace, accounts: SimpleNamespace) -> None:
    alice = accounts.alice.address
    for outsider in (accounts.alice, accounts.deployer, accounts.minter):
        with reverts("AccessControlUnauthorizedAccount"):
            send(c.distributor.functions.mintBatch([_id()], [alice], [E18]), outsider)
        with reverts("AccessControlUnauthorizedAccount"):
            send(
                c.distributor.functions.burnWithPermit(
                    _id(), alice, E18, 0, 27, b"\0" * 32, b"\0" * 32
                ),
                outsider,
            )


def test_malformed_batches_are_refused(c: SimpleNamespace, accounts: SimpleNamespace) -> None:
    alice = accounts.alice.address
    with reverts("LengthMismatch"):
        send(c.distributor.functions.mintBatch([_id()], [alice, alice], [E18]), accounts.writer)
    with reverts("ZeroRecipient"):
        send(c.distributor.functions.mintBatch([_id()], ["0x" + "00" * 20], [E18]), accounts.writer)
    with reverts("ZeroAmount"):
        send(c.distributor.functions.mintBatch([_id()], [alice], [0]), accounts.writer)
    with reverts("BatchTooLarge"):
        send(
            c.distributor.functions.mintBatch([_id()] * 513, [alice] * 513, [1] * 513),
            accounts.writer,
        )


def _permit(c: SimpleNamespace, owner: Any, value: int, deadline: int) -> tuple[int, bytes, bytes]:
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
            "spender": c.distributor.address,
            "value": value,
            "nonce": c.token.functions.nonces(owner.address).call(),
            "deadline": deadline,
        },
    )
    signed = owner.sign_message(message)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


def test_burn_with_permit_once(c: SimpleNamespace, accounts: SimpleNamespace, w3: Web3) -> None:
    alice = accounts.alice
    send(c.distributor.functions.mintBatch([_id()], [alice.address], [5 * E18]), accounts.writer)
    deadline = now(w3) + 3600
    v, r, s = _permit(c, alice, 2 * E18, deadline)
    command = _id()
    burn = c.distributor.functions.burnWithPermit(
        command, alice.address, 2 * E18, deadline, v, r, s
    )
    receipt = send(burn, accounts.writer)
    burned = _events(c.distributor, receipt, "RewardBurned")
    assert [(e.args.commandId, e.args.amount) for e in burned] == [(command, 2 * E18)]
    assert c.token.functions.balanceOf(alice.address).call() == 3 * E18
    # Resent (after a crash or a reorg): skipped, nothing burned twice.
    receipt = send(burn, accounts.writer)
    assert [e.args.commandId for e in _events(c.distributor, receipt, "CommandSkipped")] == [
        command
    ]
    assert c.token.functions.balanceOf(alice.address).call() == 3 * E18


def test_permit_submitted_by_someone_else_first_still_burns(
    c: SimpleNamespace, accounts: SimpleNamespace, w3: Web3
) -> None:
    alice = accounts.alice
    send(c.distributor.functions.mintBatch([_id()], [alice.address], [5 * E18]), accounts.writer)
    deadline = now(w3) + 3600
    v, r, s = _permit(c, alice, E18, deadline)
    send(
        c.token.functions.permit(alice.address, c.distributor.address, E18, deadline, v, r, s),
        accounts.bob,
    )
    send(
        c.distributor.functions.burnWithPermit(_id(), alice.address, E18, deadline, v, r, s),
        accounts.writer,
    )
    assert c.token.functions.balanceOf(alice.address).call() == 4 * E18


def test_burn_refuses_bad_or_expired_permits(
    c: SimpleNamespace, accounts: SimpleNamespace, w3: Web3
) -> None:
    alice, bob = accounts.alice, accounts.bob
    send(c.distributor.functions.mintBatch([_id()], [alice.address], [5 * E18]), accounts.writer)
    deadline = now(w3) + 3600
    # Signed by someone else than the holder.
    v, r, s = _permit(c, bob, E18, deadline)
    with reverts("ERC2612InvalidSigner"):
        send(
            c.distributor.functions.burnWithPermit(_id(), alice.address, E18, deadline, v, r, s),
            accounts.writer,
        )
    # Signed for less than what is burned.
    v, r, s = _permit(c, alice, E18, deadline)
    with reverts("ERC2612InvalidSigner"):
        send(
            c.distributor.functions.burnWithPermit(
                _id(), alice.address, 2 * E18, deadline, v, r, s
            ),
            accounts.writer,
        )
    # Expired.
    expired = now(w3) - 1
    v, r, s = _permit(c, alice, E18, expired)
    with reverts("ERC2612ExpiredSignature"):
        send(
            c.distributor.functions.burnWithPermit(_id(), alice.address, E18, expired, v, r, s),
            accounts.writer,
        )
    # More than the holder has, with a valid permit.
    v, r, s = _permit(c, alice, 50 * E18, deadline)
    with reverts("ERC20InsufficientBalance"):
        send(
            c.distributor.functions.burnWithPermit(
                _id(), alice.address, 50 * E18, deadline, v, r, s
            ),
            accounts.writer,
        )
    assert c.token.functions.balanceOf(alice.address).call() == 5 * E18
