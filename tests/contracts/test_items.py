"""StrideItems: minting with on-chain metadata, JSON tokenURI vs base URI, ERC2981 royalties."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

from web3.logs import DISCARD

from tests.contracts.conftest import MintItem, reverts, send


def _decode(uri: str) -> dict:
    prefix = "data:application/json;base64,"
    assert uri.startswith(prefix)
    return json.loads(base64.b64decode(uri[len(prefix) :]))


def test_mint_stores_metadata_as_json(
    c: SimpleNamespace, accounts: SimpleNamespace, mint_item: MintItem
) -> None:
    token_id = mint_item(accounts.alice.address, "Boots", [("speed", "9"), ("slot", "feet")])
    assert c.items.functions.ownerOf(token_id).call() == accounts.alice.address
    document = _decode(c.items.functions.tokenURI(token_id).call())
    assert document == {
        "name": "Boots",
        "image": "ipfs://img",
        "attributes": [
            {"trait_type": "speed", "value": "9"},
            {"trait_type": "slot", "value": "feet"},
        ],
    }
    name, image, traits = c.items.functions.itemData(token_id).call()
    assert (name, image, traits) == ("Boots", "ipfs://img", [("speed", "9"), ("slot", "feet")])


def test_metadata_is_json_escaped(
    c: SimpleNamespace, accounts: SimpleNamespace, mint_item: MintItem
) -> None:
    tricky = 'Sword", "image": "evil\\\n'
    token_id = mint_item(accounts.alice.address, tricky, [('q"uote', "back\\slash")])
    document = _decode(c.items.functions.tokenURI(token_id).call())
    assert document["name"] == tricky
    assert document["image"] == "ipfs://img"
    assert document["attributes"] == [{"trait_type": 'q"uote', "value": "back\\slash"}]


def test_base_uri_switch(
    c: SimpleNamespace, accounts: SimpleNamespace, mint_item: MintItem
) -> None:
    token_id = mint_item(accounts.alice.address)
    with reverts("AccessControlUnauthorizedAccount"):
        send(c.items.functions.setBaseURI("https://x/"), accounts.alice)
    receipt = send(c.items.functions.setBaseURI("https://items.example/meta/"), accounts.deployer)
    assert c.items.events.BatchMetadataUpdate().process_receipt(receipt, errors=DISCARD)
    assert c.items.functions.tokenURI(token_id).call() == f"https://items.example/meta/{token_id}"
    send(c.items.functions.setBaseURI(""), accounts.deployer)
    assert c.items.functions.tokenURI(token_id).call().startswith("data:application/json;base64,")


def test_mint_reverts(c: SimpleNamespace, accounts: SimpleNamespace) -> None:
    with reverts("AccessControlUnauthorizedAccount"):
        send(c.items.functions.mint(accounts.alice.address, "x", "y", []), accounts.alice)
    too_many = [("t", "v")] * 17
    with reverts("TooManyTraits"):
        send(c.items.functions.mint(accounts.alice.address, "x", "y", too_many), accounts.minter)
    with reverts("ERC721NonexistentToken"):
        c.items.functions.tokenURI(999).call()


def test_royalties(c: SimpleNamespace, accounts: SimpleNamespace, mint_item: MintItem) -> None:
    token_id = mint_item(accounts.alice.address)
    receiver, amount = c.items.functions.royaltyInfo(token_id, 10_000).call()
    assert (receiver, amount) == (accounts.treasury.address, 500)  # 5% default
    send(
        c.items.functions.setTokenRoyalty(token_id, accounts.bob.address, 1_000), accounts.deployer
    )
    assert c.items.functions.royaltyInfo(token_id, 10_000).call() == [accounts.bob.address, 1_000]
    with reverts("AccessControlUnauthorizedAccount"):
        send(c.items.functions.setDefaultRoyalty(accounts.alice.address, 100), accounts.alice)
    with reverts("ERC2981InvalidDefaultRoyalty"):
        send(c.items.functions.setDefaultRoyalty(accounts.bob.address, 10_001), accounts.deployer)


def test_supports_interfaces(c: SimpleNamespace) -> None:
    for interface in ("0x80ac58cd", "0x5b5e139f", "0x2a55205a", "0x49064906", "0x7965db0b"):
        assert c.items.functions.supportsInterface(bytes.fromhex(interface[2:])).call(), interface
