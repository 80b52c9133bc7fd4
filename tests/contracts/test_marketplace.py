"""StrideMarketplace: listings (native coin and game token), offers, atomic swaps, fees and
royalties, every revert path, reentrancy through a malicious buyer or seller, no custody."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from web3 import Web3
from web3.logs import DISCARD

from tests.contracts.conftest import E18, MintItem, deploy_artifact, now, reverts, send

NATIVE = "0x0000000000000000000000000000000000000000"


@pytest.fixture
def item(c: SimpleNamespace, accounts: SimpleNamespace, mint_item: MintItem) -> int:
    """An item owned by alice, approved for the market, royalty 5% to carol."""
    token_id = mint_item(accounts.alice.address)
    send(
        c.items.functions.setTokenRoyalty(token_id, accounts.carol.address, 500), accounts.deployer
    )
    send(c.items.functions.setApprovalForAll(c.market.address, True), accounts.alice)
    return token_id


def _list(c, seller, token_id, currency, price, w3: Web3, collection=None) -> int:
    collection = collection or c.items.address
    fn = c.market.functions.list(collection, token_id, currency, price, now(w3) + 3600)
    send(fn, seller)
    return c.market.functions.listingCount().call()


def _assert_no_custody(c: SimpleNamespace, w3: Web3) -> None:
    assert w3.eth.get_balance(c.market.address) == 0
    assert c.token.functions.balanceOf(c.market.address).call() == 0


def test_buy_with_native_coin_pays_fee_and_royalty(
    c: SimpleNamespace, accounts: SimpleNamespace, item: int, w3: Web3
) -> None:
    alice, bob, carol, treasury = accounts.alice, accounts.bob, accounts.carol, accounts.treasury
    listing = _list(c, alice, item, NATIVE, 10 * E18, w3)
    before = {a.address: w3.eth.get_balance(a.address) for a in (alice, carol, treasury)}
    receipt = send(c.market.functions.buy(listing), bob, value=10 * E18)
    sale = c.market.events.Sale().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (sale["fee"], sale["royalty"]) == (E18 * 25 // 100, E18 // 2)
    assert c.items.functions.ownerOf(item).call() == bob.address
    assert w3.eth.get_balance(treasury.address) - before[treasury.address] == E18 * 25 // 100
    assert w3.eth.get_balance(carol.address) - before[carol.address] == E18 // 2
    assert w3.eth.get_balance(alice.address) - before[alice.address] == 10 * E18 - E18 * 75 // 100
    _assert_no_custody(c, w3)
    with reverts("NotActive"):
        send(c.market.functions.buy(listing), bob, value=10 * E18)


def test_buy_with_game_token(
    c: SimpleNamespace, accounts: SimpleNamespace, item: int, w3: Web3
) -> None:
    alice, bob = accounts.alice, accounts.bob
    listing = _list(c, alice, item, c.token.address, 100 * E18, w3)
    send(c.token.functions.mint(bob.address, 100 * E18), accounts.minter)
    with reverts("ERC20InsufficientAllowance"):
        send(c.market.functions.buy(listing), bob)
    send(c.token.functions.approve(c.market.address, 100 * E18), bob)
    with reverts("WrongPayment"):
        send(c.market.functions.buy(listing), bob, value=1)
    send(c.market.functions.buy(listing), bob)
    balance = c.token.functions.balanceOf
    assert balance(accounts.treasury.address).call() == 25 * E18 // 10
    assert balance(accounts.carol.address).call() == 5 * E18
    assert balance(alice.address).call() == 100 * E18 - 75 * E18 // 10
    assert c.items.functions.ownerOf(item).call() == bob.address
    _assert_no_custody(c, w3)


def test_listing_revert_paths(
    c: SimpleNamespace, accounts: SimpleNamespace, item: int, mint_item: MintItem, w3: Web3
) -> None:
    alice, bob = accounts.alice, accounts.bob
    deadline = now(w3) + 3600
    with reverts("ZeroPrice"):
        send(c.market.functions.list(c.items.address, item, NATIVE, 0, deadline), alice)
    with reverts("UnsupportedCurrency"):
        send(c.market.functions.list(c.items.address, item, bob.address, 1, deadline), alice)
    with reverts("Expired"):
        send(c.market.functions.list(c.items.address, item, NATIVE, 1, now(w3)), alice)
    with reverts("NotTokenOwner"):
        send(c.market.functions.list(c.items.address, item, NATIVE, 1, deadline), bob)
    unapproved = mint_item(bob.address)
    with reverts("MarketNotApproved"):
        send(c.market.functions.list(c.items.address, unapproved, NATIVE, 1, deadline), bob)
    listing = _list(c, alice, item, NATIVE, E18, w3)
    with reverts("WrongPayment"):
        send(c.market.functions.buy(listing), bob, value=E18 - 1)
    with reverts("NotAuthorized"):
        send(c.market.functions.cancelListing(listing), bob)
    # The seller moved the item away: the stale listing cannot be filled.
    send(c.items.functions.transferFrom(alice.address, accounts.carol.address, item), alice)
    with reverts("NotTokenOwner"):
        send(c.market.functions.buy(listing), bob, value=E18)
    send(c.market.functions.cancelListing(listing), alice)
    with reverts("NotActive"):
        send(c.market.functions.cancelListing(listing), alice)


def test_listing_expires(
    c: SimpleNamespace, accounts: SimpleNamespace, item: int, w3: Web3
) -> None:
    listing = _list(c, accounts.alice, item, NATIVE, E18, w3)
    w3.provider.make_request("evm_mine", [now(w3) + 3601])
    with reverts("Expired"):
        send(c.market.functions.buy(listing), accounts.bob, value=E18)


def test_offers(c: SimpleNamespace, accounts: SimpleNamespace, item: int, w3: Web3) -> None:
    alice, bob = accounts.alice, accounts.bob
    deadline = now(w3) + 3600
    with reverts("InsufficientAllowance"):
        send(c.market.functions.makeOffer(c.items.address, item, 50 * E18, deadline), bob)
    send(c.token.functions.mint(bob.address, 50 * E18), accounts.minter)
    send(c.token.functions.approve(c.market.address, 50 * E18), bob)
    with reverts("ZeroPrice"):
        send(c.market.functions.makeOffer(c.items.address, item, 0, deadline), bob)
    send(c.market.functions.makeOffer(c.items.address, item, 50 * E18, deadline), bob)
    offer = c.market.functions.offerCount().call()
    assert c.token.functions.balanceOf(bob.address).call() == 50 * E18  # no escrow
    with reverts("NotTokenOwner"):
        send(c.market.functions.acceptOffer(offer), accounts.carol)
    with reverts("NotAuthorized"):
        send(c.market.functions.cancelOffer(offer), alice)
    send(c.market.functions.acceptOffer(offer), alice)
    assert c.items.functions.ownerOf(item).call() == bob.address
    assert c.token.functions.balanceOf(alice.address).call() == 50 * E18 * 925 // 1000
    with reverts("NotActive"):
        send(c.market.functions.acceptOffer(offer), alice)
    _assert_no_custody(c, w3)


def test_offer_cancel(c: SimpleNamespace, accounts: SimpleNamespace, item: int, w3: Web3) -> None:
    bob = accounts.bob
    send(c.token.functions.approve(c.market.address, E18), bob)
    send(c.market.functions.makeOffer(c.items.address, item, E18, now(w3) + 60), bob)
    offer = c.market.functions.offerCount().call()
    send(c.market.functions.cancelOffer(offer), bob)
    with reverts("NotActive"):
        send(c.market.functions.acceptOffer(offer), accounts.alice)


def _swap_terms(maker, taker, maker_nft, maker_amount, taker_nft, taker_amount, expiry):
    return (
        maker,
        expiry,
        False,
        taker,
        maker_nft[0],
        maker_nft[1],
        maker_amount,
        taker_nft[0],
        taker_nft[1],
        taker_amount,
    )


def test_swap_nft_for_nft_with_top_up(
    c: SimpleNamespace, accounts: SimpleNamespace, item: int, mint_item: MintItem, w3: Web3
) -> None:
    alice, bob = accounts.alice, accounts.bob
    other = deploy_artifact(w3, "PlainERC721", bob.address)  # no ERC2981: no royalty
    send(other.functions.mint(bob.address, 1), bob)
    send(other.functions.setApprovalForAll(c.market.address, True), bob)
    send(c.token.functions.mint(alice.address, 10 * E18), accounts.minter)
    send(c.token.functions.approve(c.market.address, 10 * E18), alice)
    terms = _swap_terms(
        alice.address,
        bob.address,
        (c.items.address, item),
        10 * E18,
        (other.address, 1),
        0,
        now(w3) + 3600,
    )
    send(c.market.functions.proposeSwap(terms), alice)
    swap = c.market.functions.swapCount().call()
    with reverts("NotAuthorized"):
        send(c.market.functions.acceptSwap(swap), accounts.carol)
    send(c.market.functions.acceptSwap(swap), bob)
    assert c.items.functions.ownerOf(item).call() == bob.address
    assert other.functions.ownerOf(1).call() == alice.address
    assert c.token.functions.balanceOf(bob.address).call() == 10 * E18 * 975 // 1000
    with reverts("NotActive"):
        send(c.market.functions.acceptSwap(swap), bob)
    _assert_no_custody(c, w3)


def test_swap_nft_for_tokens(
    c: SimpleNamespace, accounts: SimpleNamespace, item: int, w3: Web3
) -> None:
    alice, bob = accounts.alice, accounts.bob
    zero = (NATIVE, 0)
    terms = _swap_terms(
        alice.address, NATIVE, (c.items.address, item), 0, zero, 20 * E18, now(w3) + 60
    )
    send(c.market.functions.proposeSwap(terms), alice)
    swap = c.market.functions.swapCount().call()
    send(c.token.functions.mint(bob.address, 20 * E18), accounts.minter)
    send(c.token.functions.approve(c.market.address, 20 * E18), bob)
    send(c.market.functions.acceptSwap(swap), bob)  # open to anyone
    assert c.items.functions.ownerOf(item).call() == bob.address
    assert c.token.functions.balanceOf(accounts.carol.address).call() == E18  # 5% royalty
    assert c.token.functions.balanceOf(alice.address).call() == 20 * E18 * 925 // 1000


def test_swap_revert_paths(
    c: SimpleNamespace, accounts: SimpleNamespace, item: int, mint_item: MintItem, w3: Web3
) -> None:
    alice, bob = accounts.alice, accounts.bob
    zero = (NATIVE, 0)
    later = now(w3) + 60
    nothing_asked = _swap_terms(alice.address, NATIVE, (c.items.address, item), 0, zero, 0, later)
    with reverts("InvalidSwap"):
        send(c.market.functions.proposeSwap(nothing_asked), alice)
    nothing_given = _swap_terms(alice.address, NATIVE, zero, 0, zero, E18, later)
    with reverts("InvalidSwap"):
        send(c.market.functions.proposeSwap(nothing_given), alice)
    bobs = mint_item(bob.address)  # bob has not approved the market
    terms = _swap_terms(
        alice.address, NATIVE, (c.items.address, item), 0, (c.items.address, bobs), 0, later
    )
    send(c.market.functions.proposeSwap(terms), alice)
    swap = c.market.functions.swapCount().call()
    with reverts("MarketNotApproved"):
        send(c.market.functions.acceptSwap(swap), bob)
    with reverts("NotAuthorized"):
        send(c.market.functions.cancelSwap(swap), bob)
    send(c.market.functions.cancelSwap(swap), alice)
    with reverts("NotActive"):
        send(c.market.functions.acceptSwap(swap), bob)


def test_admin_and_pause(
    c: SimpleNamespace, accounts: SimpleNamespace, item: int, w3: Web3
) -> None:
    admin, alice = accounts.deployer, accounts.alice
    listing = _list(c, alice, item, NATIVE, E18, w3)
    with reverts("AccessControlUnauthorizedAccount"):
        send(c.market.functions.setFee(10), alice)
    with reverts("FeeTooHigh"):
        send(c.market.functions.setFee(1_001), admin)
    with reverts("ZeroAddress"):
        send(c.market.functions.setTreasury(NATIVE), admin)
    with reverts("AccessControlUnauthorizedAccount"):
        send(c.market.functions.pause(), alice)
    send(c.market.functions.pause(), admin)
    with reverts("EnforcedPause"):
        send(c.market.functions.buy(listing), accounts.bob, value=E18)
    send(c.market.functions.cancelListing(listing), alice)  # cancelling always works
    send(c.market.functions.unpause(), admin)
    send(c.market.functions.setFee(0), admin)
    assert c.market.functions.quote(c.items.address, item, 100).call()[:2] == [0, 5]


def test_reentrancy_by_malicious_buyer(
    c: SimpleNamespace, accounts: SimpleNamespace, item: int, mint_item: MintItem, w3: Web3
) -> None:
    """A contract buyer tries to buy a second listing from onERC721Received."""
    second = mint_item(accounts.alice.address)
    first_listing = _list(c, accounts.alice, item, NATIVE, E18, w3)
    second_listing = _list(c, accounts.alice, second, NATIVE, E18, w3)
    attacker = deploy_artifact(w3, "ReentrantReceiver", accounts.bob.address)
    w3.provider.make_request("anvil_setBalance", [attacker.address, hex(10 * E18)])
    reenter = c.market.functions.buy(second_listing)._encode_transaction_data()
    buy = c.market.functions.buy(first_listing)._encode_transaction_data()
    send(attacker.functions.arm(c.market.address, reenter, False), accounts.bob)
    with reverts("ReentrancyGuardReentrantCall"):
        send(attacker.functions.execute(c.market.address, buy, E18), accounts.bob)
    assert c.items.functions.ownerOf(item).call() == accounts.alice.address


def test_reentrancy_by_malicious_seller(
    c: SimpleNamespace, accounts: SimpleNamespace, item: int, w3: Web3
) -> None:
    """A contract seller re-enters when paid in native coin; the guard stops it and the
    swallowed failure leaves the sale intact and single."""
    attacker = deploy_artifact(w3, "ReentrantReceiver", accounts.bob.address)
    send(
        c.items.functions.transferFrom(accounts.alice.address, attacker.address, item),
        accounts.alice,
    )
    approve = c.items.functions.setApprovalForAll(c.market.address, True)._encode_transaction_data()
    send(attacker.functions.execute(c.items.address, approve, 0), accounts.bob)
    listing_call = c.market.functions.list(c.items.address, item, NATIVE, E18, now(w3) + 600)
    send(
        attacker.functions.execute(c.market.address, listing_call._encode_transaction_data(), 0),
        accounts.bob,
    )
    listing = c.market.functions.listingCount().call()
    cancel = c.market.functions.cancelListing(listing)._encode_transaction_data()
    send(attacker.functions.arm(c.market.address, cancel, True), accounts.bob)
    send(c.market.functions.buy(listing), accounts.carol, value=E18)
    assert attacker.functions.reentryAttempts().call() == 1
    assert not attacker.functions.reentrySucceeded().call()
    assert c.items.functions.ownerOf(item).call() == accounts.carol.address
    assert w3.eth.get_balance(attacker.address) == E18 - E18 * 25 // 1000 - E18 * 5 // 100
