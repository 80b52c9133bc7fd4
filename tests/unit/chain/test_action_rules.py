"""The pure rules of the app's write flows: revert reasons decoded from every committed ABI,
calldata, the check of a submitted transaction, the status a receipt gives, the bridge leg
found in a receipt."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from core.chain import abi
from core.chain.action_tracking import (
    BRIDGE_OUT,
    bridge_out_of,
    outcome,
    topic_of_int,
    tx_mismatch,
)
from core.chain.actions import APPROVAL_ERRORS, Approval, WouldRevert, check_simulation
from core.chain.node import Call, Simulated

ALICE = "0x" + "a1" * 20
MARKET = "0x" + "b2" * 20


def custom(signature: str, types: list[str], values: list[object]) -> str:
    return "0x" + keccak(text=signature)[:4].hex() + abi_encode(types, values).hex()


def test_error_string_panic_and_custom_errors_are_named_with_their_arguments() -> None:
    message = custom("Error(string)", ["string"], ["not enough"])
    assert abi.decode_revert(message).reason == "not enough"
    panic = abi.decode_revert(custom("Panic(uint256)", ["uint256"], [0x11]))
    assert panic.reason == "Panic(0x11): arithmetic overflow or underflow"
    owner = abi.decode_revert(
        custom("NotTokenOwner(address,uint256)", ["address", "uint256"], [MARKET, 7])
    )
    assert owner.name == "NotTokenOwner"
    assert owner.reason == f"NotTokenOwner(collection={abi.checksum(MARKET)}, tokenId=7)"
    # An OpenZeppelin error of the token's ABI, not of the contract called.
    balance = abi.decode_revert(
        custom(
            "ERC20InsufficientBalance(address,uint256,uint256)",
            ["address", "uint256", "uint256"],
            [ALICE, 1, 2],
        )
    )
    assert balance.reason.startswith("ERC20InsufficientBalance(sender=")
    assert abi.decode_revert(custom("Expired()", [], [])).reason == "Expired()"
    assert abi.decode_revert("0x").reason == "reverted without a reason"
    assert abi.decode_revert("0xdeadbeef").name == "unknown"
    assert abi.decode_revert(None).name == "unknown"


def test_calldata_matches_the_abi_and_picks_overloads_by_arity() -> None:
    data = abi.calldata("StrideMarketplace", "buy", 3)
    assert data == "0x" + keccak(text="buy(uint256)")[:4].hex() + f"{3:064x}"
    three = abi.calldata("StrideItems", "safeTransferFrom", ALICE, MARKET, 5)
    selector = keccak(text="safeTransferFrom(address,address,uint256)")[:4].hex()
    assert three.startswith("0x" + selector)
    swap = abi.function("StrideMarketplace", "proposeSwap", 1)
    assert swap.inputs == (
        "(address,uint64,bool,address,address,uint256,uint256,address,uint256,uint256)",
    )
    with pytest.raises(abi.AbiMismatch):
        abi.calldata("StrideMarketplace", "buy", 1, 2)


def test_a_refused_simulation_names_the_call_and_the_reason() -> None:
    approval = Approval("Allow the vault to move 1 STRIDE", Call(ALICE, MARKET, "0x"))
    reverted = Simulated(False, 0, custom("ZeroAmount()", [], []))
    with pytest.raises(WouldRevert, match=r"^ZeroAmount\(\): the chain would refuse the tr"):
        check_simulation([Simulated(True, 1, None), reverted], [approval])
    with pytest.raises(WouldRevert, match="refuse allow the vault"):
        check_simulation([reverted, Simulated(True, 1, None)], [approval])
    # A node that simulated the action alone may refuse it for the approval listed before it.
    allowance = custom(
        "ERC20InsufficientAllowance(address,uint256,uint256)",
        ["address", "uint256", "uint256"],
        [MARKET, 0, 1],
    )
    assert "ERC20InsufficientAllowance" in APPROVAL_ERRORS
    check_simulation([Simulated(True, 0, None), Simulated(False, 0, allowance)], [approval])
    with pytest.raises(WouldRevert):
        check_simulation([Simulated(False, 0, allowance)], [])


PREPARED = {"from": ALICE, "to": MARKET, "data": "0xabcd", "value": "0x5", "chainId": "0x7a69"}


def test_a_submitted_transaction_must_be_the_one_prepared() -> None:
    same = {"from": ALICE.upper().replace("0X", "0x"), "to": MARKET, "input": "0xABCD"}
    assert tx_mismatch(PREPARED, same | {"value": "0x5", "chainId": "0x7a69"}) is None
    assert tx_mismatch(PREPARED, same | {"value": "0x5"}) is None  # legacy: no chain id
    assert "value" in str(tx_mismatch(PREPARED, same | {"value": "0x6"}))
    assert "data" in str(tx_mismatch(PREPARED, same | {"input": "0x", "value": "0x5"}))
    assert "chainId" in str(tx_mismatch(PREPARED, same | {"value": "0x5", "chainId": "0x1"}))
    other_sender = same | {"from": MARKET, "value": "0x5"}
    assert str(tx_mismatch(PREPARED, other_sender)).startswith("from:")


def receipt(number: int, status: int, block_hash: str = "0xaa") -> dict[str, object]:
    return {"blockNumber": hex(number), "blockHash": block_hash, "status": hex(status)}


def test_the_receipt_decides_the_status_after_the_confirmations() -> None:
    assert outcome(None, 10, None, 1).status == "submitted"
    assert outcome(receipt(10, 1), 10, "0xaa", 1).status == "confirmed"
    assert outcome(receipt(10, 1), 10, "0xaa", 3).status == "submitted"
    assert outcome(receipt(10, 1), 12, "0xaa", 3).status == "confirmed"
    assert outcome(receipt(10, 0), 10, "0xaa", 3).status == "failed"  # no wait for a revert
    assert outcome(receipt(10, 1), 12, "0xbb", 1).status == "submitted"  # orphaned block


def test_the_bridge_leg_is_read_from_the_bridge_out_log() -> None:
    bridge = "0x" + "cc" * 20
    log = {
        "address": bridge.upper().replace("0X", "0x"),
        "topics": [BRIDGE_OUT, topic_of_int(4), topic_of_int(31338), "0x" + "00" * 32],
    }
    assert bridge_out_of({"logs": [log]}, bridge) == (4, 31338)
    assert bridge_out_of({"logs": [log | {"address": MARKET}]}, bridge) is None
    assert bridge_out_of({"logs": []}, bridge) is None
