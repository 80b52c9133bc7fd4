"""The app's write flows, non-custodial: what the user's wallet must sign to stake, trade or
bridge, checked against the chain before it is shown.

An action is one transaction of the user's wallet (``main``), preceded by the approvals it
needs that are missing (an ERC-20 allowance, an ERC-721 operator approval), each returned
as an unsigned EIP-1559 transaction. Before anything is returned, the approvals and the
action are simulated in a row from the user's wallet (``eth_simulateV1``, or ``eth_call``
of the action alone); a revert is a :class:`WouldRevert` whose message is the decoded
reason (``Error(string)``, ``Panic`` with its meaning, or a custom error of the ABIs with
its arguments). Marketplace actions show the split of the price (protocol fee, royalty and
its receiver, what the seller gets) before signing. None of these contracts takes a
signature from the user (no EIP-712 typed data to sign): every flow is a transaction.

The rules (which calls, which approvals, which split) are functions of the parameters
(:mod:`core.chain.action_params`) and of typed reads of the contracts (:class:`Reader`);
:func:`prepare` adds the simulation through :class:`core.chain.node.Node`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.chain import abi
from core.chain.action_params import ActionParams, Kind, positive, uint
from core.chain.deployments import StrideContracts
from core.chain.node import Call, CallReverted, Fees, Node, Simulated, padded_gas
from core.platform.errors import Invalid

NATIVE = "0x" + "00" * 20
# Revert reasons that the listed approvals fix: the action is simulated after them.
APPROVAL_ERRORS = frozenset(
    {"ERC20InsufficientAllowance", "MarketNotApproved", "ERC721InsufficientApproval"}
)


class WouldRevert(Invalid):
    """The chain would refuse the transaction; the message is the decoded reason."""

    code = "would_revert"


# ---- what is read from the chain ------------------------------------------------------------


@dataclass(frozen=True)
class Erc20Need:
    """The wallet must let ``spender`` move ``amount`` of the game token."""

    spender: str
    spender_name: str
    amount: int


@dataclass(frozen=True)
class NftNeed:
    """The market must be an operator of ``collection`` for ``token_id``."""

    collection: str
    token_id: int


@dataclass(frozen=True)
class Split:
    """How a price in the game token or the native coin is shared out."""

    price: int
    fee: int
    royalty: int
    royalty_receiver: str | None
    currency: str  # the token's address or NATIVE

    @property
    def seller_receives(self) -> int:
        return self.price - self.fee - self.royalty

    def public(self) -> dict[str, Any]:
        return {
            "price": str(self.price),
            "currency": "native" if self.currency == NATIVE else "token",
            "currency_address": self.currency,
            "fee": str(self.fee),
            "royalty": str(self.royalty),
            "royalty_receiver": self.royalty_receiver,
            "seller_receives": str(self.seller_receives),
        }


@dataclass
class Draft:
    """An action before the chain is asked: its call, what it needs, what it shows."""

    main: Call
    summary: str
    erc20: list[Erc20Need] = field(default_factory=list)
    nft: list[NftNeed] = field(default_factory=list)
    splits: list[Split] = field(default_factory=list)


SWAP_FIELDS = (
    "maker",
    "expiry",
    "active",
    "taker",
    "maker_collection",
    "maker_token_id",
    "maker_amount",
    "taker_collection",
    "taker_token_id",
    "taker_amount",
)


class Reader:
    """Typed reads of the Stride contracts (``eth_call`` at the latest block)."""

    def __init__(self, node: Node, contracts: StrideContracts) -> None:
        self.node = node
        self.c = contracts

    def call(self, contract: str, address: str, name: str, *args: Any) -> tuple[Any, ...]:
        result = self.node.read(address, abi.calldata(contract, name, *args))
        return abi.decode_result(contract, name, len(args), result)

    def timestamp(self) -> int:
        return int(self.node.latest_block()["timestamp"], 16)

    def allowance(self, owner: str, spender: str) -> int:
        return int(self.call("StrideToken", self.c.token, "allowance", owner, spender)[0])

    def operator_ok(self, collection: str, owner: str, token_id: int) -> bool:
        market = self.c.market
        if self.call("StrideItems", collection, "isApprovedForAll", owner, market)[0]:
            return True
        try:
            approved = self.call("StrideItems", collection, "getApproved", token_id)[0]
        except CallReverted:
            return False  # no such token: the action's simulation names it
        return abi.addresses_equal(approved, market)

    def split(self, collection: str, token_id: int, price: int, currency: str) -> Split:
        fee, royalty, receiver = self.call(
            "StrideMarketplace", self.c.market, "quote", collection, token_id, price
        )
        no_receiver = int(receiver, 16) == 0
        return Split(
            price, int(fee), int(royalty), None if no_receiver else abi.checksum(receiver), currency
        )

    def listing(self, listing_id: int) -> dict[str, Any]:
        seller, expiry, active, collection, currency, token_id, price = self.call(
            "StrideMarketplace", self.c.market, "listings", listing_id
        )
        return {
            "seller": seller,
            "expiry": int(expiry),
            "active": bool(active),
            "collection": abi.checksum(collection),
            "currency": abi.checksum(currency),
            "token_id": int(token_id),
            "price": int(price),
        }

    def offer(self, offer_id: int) -> dict[str, Any]:
        buyer, _expiry, active, collection, token_id, amount = self.call(
            "StrideMarketplace", self.c.market, "offers", offer_id
        )
        return {
            "buyer": buyer,
            "active": bool(active),
            "collection": abi.checksum(collection),
            "token_id": int(token_id),
            "amount": int(amount),
        }

    def swap(self, swap_id: int) -> dict[str, Any]:
        values = self.call("StrideMarketplace", self.c.market, "swaps", swap_id)
        return dict(zip(SWAP_FIELDS, values, strict=True))


# ---- the rules, per kind ----------------------------------------------------------------


def _collection(c: StrideContracts, value: str | None) -> str:
    return abi.checksum(value) if value else c.items


def _fmt(amount: int, unit: str = "STRIDE") -> str:
    whole, frac = divmod(amount, 10**18)
    text = f"{whole}.{frac:018d}".rstrip("0").rstrip(".")
    return f"{text} {unit}"


def draft(kind: Kind, params: ActionParams, wallet: str, c: StrideContracts, r: Reader) -> Draft:
    """The call, approvals and split of one action (reads only what the kind needs)."""
    builder = _BUILDERS[kind]
    return builder(params, wallet, c, r)


def _stake_tokens(p: Any, wallet: str, c: StrideContracts, _r: Reader) -> Draft:
    amount = positive(p.amount, "amount")
    return Draft(
        Call(wallet, c.vault, abi.calldata("OmnibusVault", "stake", amount)),
        f"Stake {_fmt(amount)} in the vault",
        erc20=[Erc20Need(c.vault, "the vault", amount)],
    )


def _unstake_tokens(p: Any, wallet: str, c: StrideContracts, _r: Reader) -> Draft:
    amount = positive(p.amount, "amount")
    return Draft(
        Call(wallet, c.vault, abi.calldata("OmnibusVault", "withdraw", amount)),
        f"Withdraw {_fmt(amount)} staked in the vault",
    )


def _stake_nft(p: Any, wallet: str, c: StrideContracts, _r: Reader) -> Draft:
    collection, token_id = _collection(c, p.collection), uint(p.token_id, "token_id")
    data = abi.calldata("StrideItems", "safeTransferFrom", wallet, c.vault, token_id)
    return Draft(
        Call(wallet, collection, data),
        f"Stake NFT {token_id} of {collection} in the vault (safeTransferFrom to the vault)",
    )


def _unstake_nft(p: Any, wallet: str, c: StrideContracts, _r: Reader) -> Draft:
    collection, token_id = _collection(c, p.collection), uint(p.token_id, "token_id")
    return Draft(
        Call(wallet, c.vault, abi.calldata("OmnibusVault", "withdrawNft", collection, token_id)),
        f"Withdraw NFT {token_id} of {collection} from the vault",
    )


def _claim(_p: Any, wallet: str, c: StrideContracts, r: Reader) -> Draft:
    earned = int(r.call("OmnibusVault", c.vault, "earned", wallet)[0])
    return Draft(
        Call(wallet, c.vault, abi.calldata("OmnibusVault", "claim")),
        f"Claim the vault's rewards (about {_fmt(earned)} earned now)",
    )


def _list(p: Any, wallet: str, c: StrideContracts, r: Reader) -> Draft:
    collection, token_id = _collection(c, p.collection), uint(p.token_id, "token_id")
    price = positive(p.price, "price")
    currency = NATIVE if p.currency == "native" else c.token
    expiry = r.timestamp() + p.expires_in_s
    data = abi.calldata("StrideMarketplace", "list", collection, token_id, currency, price, expiry)
    unit = "of the native coin" if currency == NATIVE else "STRIDE"
    return Draft(
        Call(wallet, c.market, data),
        f"List NFT {token_id} of {collection} for {_fmt(price, unit)} until {expiry}",
        nft=[NftNeed(collection, token_id)],
        splits=[r.split(collection, token_id, price, currency)],
    )


def _cancel_listing(p: Any, wallet: str, c: StrideContracts, _r: Reader) -> Draft:
    listing_id = uint(p.listing_id, "listing_id")
    return Draft(
        Call(wallet, c.market, abi.calldata("StrideMarketplace", "cancelListing", listing_id)),
        f"Cancel listing {listing_id}",
    )


def _buy(p: Any, wallet: str, c: StrideContracts, r: Reader) -> Draft:
    listing_id = uint(p.listing_id, "listing_id")
    listing = r.listing(listing_id)
    price, currency = listing["price"], listing["currency"]
    native = currency == NATIVE
    data = abi.calldata("StrideMarketplace", "buy", listing_id)
    unit = "of the native coin" if native else "STRIDE"
    return Draft(
        Call(wallet, c.market, data, value=price if native else 0),
        f"Buy listing {listing_id}: NFT {listing['token_id']} of {listing['collection']} "
        f"for {_fmt(price, unit)}",
        erc20=[] if native or price == 0 else [Erc20Need(c.market, "the marketplace", price)],
        splits=[r.split(listing["collection"], listing["token_id"], price, currency)]
        if price
        else [],
    )


def _make_offer(p: Any, wallet: str, c: StrideContracts, r: Reader) -> Draft:
    collection, token_id = _collection(c, p.collection), uint(p.token_id, "token_id")
    amount = positive(p.amount, "amount")
    expiry = r.timestamp() + p.expires_in_s
    data = abi.calldata("StrideMarketplace", "makeOffer", collection, token_id, amount, expiry)
    return Draft(
        Call(wallet, c.market, data),
        f"Offer {_fmt(amount)} for NFT {token_id} of {collection} until {expiry} (the tokens "
        "stay in your wallet until the owner accepts; keep the allowance)",
        erc20=[Erc20Need(c.market, "the marketplace", amount)],
        splits=[r.split(collection, token_id, amount, c.token)],
    )


def _cancel_offer(p: Any, wallet: str, c: StrideContracts, _r: Reader) -> Draft:
    offer_id = uint(p.offer_id, "offer_id")
    return Draft(
        Call(wallet, c.market, abi.calldata("StrideMarketplace", "cancelOffer", offer_id)),
        f"Cancel offer {offer_id}",
    )


def _accept_offer(p: Any, wallet: str, c: StrideContracts, r: Reader) -> Draft:
    offer_id = uint(p.offer_id, "offer_id")
    offer = r.offer(offer_id)
    collection, token_id = offer["collection"], offer["token_id"]
    known = int(collection, 16) != 0
    return Draft(
        Call(wallet, c.market, abi.calldata("StrideMarketplace", "acceptOffer", offer_id)),
        f"Sell NFT {token_id} of {collection} for offer {offer_id} ({_fmt(offer['amount'])})",
        nft=[NftNeed(collection, token_id)] if known else [],
        splits=[r.split(collection, token_id, offer["amount"], c.token)] if known else [],
    )


def _propose_swap(p: Any, wallet: str, c: StrideContracts, r: Reader) -> Draft:
    give = _collection(c, p.give_collection)
    give_id = uint(p.give_token_id, "give_token_id")
    give_amount = uint(p.give_amount, "give_amount")
    want = abi.checksum(p.want_collection) if p.want_collection else NATIVE
    want_id = uint(p.want_token_id, "want_token_id")
    want_amount = uint(p.want_amount, "want_amount")
    if want == NATIVE and want_amount == 0:
        raise Invalid("want_collection or want_amount: a swap must ask for an NFT or tokens")
    expiry = r.timestamp() + p.expires_in_s
    taker = abi.checksum(p.taker) if p.taker else NATIVE
    terms = (wallet, expiry, True, taker, give, give_id, give_amount, want, want_id, want_amount)
    data = abi.calldata("StrideMarketplace", "proposeSwap", terms)
    asked = [f"NFT {want_id} of {want}"] if want != NATIVE else []
    asked += [_fmt(want_amount)] if want_amount else []
    splits = [r.split(give, give_id, want_amount, c.token)] if want_amount else []
    if give_amount and want != NATIVE:
        splits.append(r.split(want, want_id, give_amount, c.token))
    return Draft(
        Call(wallet, c.market, data),
        f"Propose giving NFT {give_id} of {give}"
        + (f" and {_fmt(give_amount)}" if give_amount else "")
        + f" for {' and '.join(asked)} until {expiry}",
        erc20=[Erc20Need(c.market, "the marketplace", give_amount)] if give_amount else [],
        nft=[NftNeed(give, give_id)],
        splits=splits,
    )


def _cancel_swap(p: Any, wallet: str, c: StrideContracts, _r: Reader) -> Draft:
    swap_id = uint(p.swap_id, "swap_id")
    return Draft(
        Call(wallet, c.market, abi.calldata("StrideMarketplace", "cancelSwap", swap_id)),
        f"Cancel swap {swap_id}",
    )


def _accept_swap(p: Any, wallet: str, c: StrideContracts, r: Reader) -> Draft:
    swap_id = uint(p.swap_id, "swap_id")
    s = r.swap(swap_id)
    taker_gives_nft = int(s["taker_collection"], 16) != 0
    taker_collection = abi.checksum(s["taker_collection"])
    maker_collection = abi.checksum(s["maker_collection"])
    splits = []
    if s["taker_amount"]:
        splits.append(r.split(maker_collection, s["maker_token_id"], s["taker_amount"], c.token))
    if s["maker_amount"] and taker_gives_nft:
        splits.append(r.split(taker_collection, s["taker_token_id"], s["maker_amount"], c.token))
    return Draft(
        Call(wallet, c.market, abi.calldata("StrideMarketplace", "acceptSwap", swap_id)),
        f"Accept swap {swap_id}: receive NFT {s['maker_token_id']} of {maker_collection}"
        + (f" and {_fmt(s['maker_amount'])}" if s["maker_amount"] else ""),
        erc20=[Erc20Need(c.market, "the marketplace", s["taker_amount"])]
        if s["taker_amount"]
        else [],
        nft=[NftNeed(taker_collection, s["taker_token_id"])] if taker_gives_nft else [],
        splits=splits,
    )


def _bridge(p: Any, wallet: str, c: StrideContracts, _r: Reader) -> Draft:
    amount = positive(p.amount, "amount")
    recipient = abi.checksum(p.recipient) if p.recipient else wallet
    destination = p.destination_chain_id
    data = abi.calldata("StrideBridge", "bridgeOut", destination, recipient, amount)
    how = "locked here" if c.bridge_mode == "lock" else "burned here"
    return Draft(
        Call(wallet, c.bridge, data),
        f"Bridge {_fmt(amount)} to {recipient} on chain {destination} ({how}, released or "
        "minted there by the relayer)",
        erc20=[Erc20Need(c.bridge, "the bridge", amount)],
    )


_BUILDERS: dict[Kind, Callable[[Any, str, StrideContracts, Reader], Draft]] = {
    Kind.stake_tokens: _stake_tokens,
    Kind.unstake_tokens: _unstake_tokens,
    Kind.stake_nft: _stake_nft,
    Kind.unstake_nft: _unstake_nft,
    Kind.claim: _claim,
    Kind.list: _list,
    Kind.cancel_listing: _cancel_listing,
    Kind.buy: _buy,
    Kind.make_offer: _make_offer,
    Kind.cancel_offer: _cancel_offer,
    Kind.accept_offer: _accept_offer,
    Kind.propose_swap: _propose_swap,
    Kind.cancel_swap: _cancel_swap,
    Kind.accept_swap: _accept_swap,
    Kind.bridge: _bridge,
}


# ---- approvals, simulation, the unsigned transactions ----------------------------------------


@dataclass(frozen=True)
class Approval:
    description: str
    call: Call


def missing_approvals(d: Draft, wallet: str, c: StrideContracts, r: Reader) -> list[Approval]:
    """The approvals ``d`` needs that the wallet has not given (allowances summed per
    spender: a buy pays fee, royalty and seller from one allowance)."""
    approvals: list[Approval] = []
    needed: dict[str, tuple[str, int]] = {}
    for need in d.erc20:
        name, amount = needed.get(need.spender, (need.spender_name, 0))
        needed[need.spender] = (name, amount + need.amount)
    for spender, (name, amount) in needed.items():
        if r.allowance(wallet, spender) < amount:
            approvals.append(
                Approval(
                    f"Allow {name} ({spender}) to move {_fmt(amount)} of your game tokens",
                    Call(wallet, c.token, abi.calldata("StrideToken", "approve", spender, amount)),
                )
            )
    asked: set[str] = set()
    for nft in d.nft:
        if nft.collection not in asked and not r.operator_ok(nft.collection, wallet, nft.token_id):
            asked.add(nft.collection)
            data = abi.calldata("StrideItems", "setApprovalForAll", c.market, True)
            approvals.append(
                Approval(
                    f"Let the marketplace ({c.market}) transfer your NFTs of {nft.collection} "
                    "when they sell (setApprovalForAll)",
                    Call(wallet, nft.collection, data),
                )
            )
    return approvals


def unsigned(call: Call, chain_id: int, gas: int | None, fees: Fees, nonce: int) -> dict[str, Any]:
    """An EIP-1559 transaction as ``eth_sendTransaction`` takes it (hex quantities)."""
    tx = {
        "type": "0x2",
        "chainId": hex(chain_id),
        "from": call.sender,
        "to": call.to,
        "data": call.data,
        "value": hex(call.value),
        "nonce": hex(nonce),
        "maxFeePerGas": hex(fees.max_fee_per_gas),
        "maxPriorityFeePerGas": hex(fees.max_priority_fee_per_gas),
    }
    if gas is not None:
        tx["gas"] = hex(gas)
    return tx


def check_simulation(results: list[Simulated], approvals: list[Approval]) -> None:
    """Raise :class:`WouldRevert` with the decoded reason of the first refused call. A node
    that simulated the action alone (without the approvals before it) may refuse it for the
    missing approval only: that one is let through."""
    for index, result in enumerate(results):
        if result.ok:
            continue
        revert = abi.decode_revert(result.revert_data)
        if approvals and index == len(approvals) and revert.name in APPROVAL_ERRORS:
            continue
        what = approvals[index].description if index < len(approvals) else "the transaction"
        raise WouldRevert(
            f"{revert.reason}: the chain would refuse {what.lower()[:1] + what[1:]}; "
            "nothing was prepared"
        )


@dataclass(frozen=True)
class Prepared:
    kind: Kind
    wallet: str
    summary: str
    approvals: list[dict[str, Any]]
    transaction: dict[str, Any]
    quote: list[dict[str, Any]]
    gas_used: int

    def document(self) -> dict[str, Any]:
        """What is stored and shown of the prepared action."""
        return {
            "summary": self.summary,
            "approvals": self.approvals,
            "transaction": self.transaction,
            "quote": self.quote,
            "simulation": {"ok": True, "gas_used": self.gas_used},
        }


def prepare(
    kind: Kind, params: ActionParams, wallet: str, contracts: StrideContracts, node: Node
) -> Prepared:
    """The approvals and the action, simulated in a row from ``wallet``; :class:`WouldRevert`
    with the decoded reason when the chain would refuse one of them."""
    reader = Reader(node, contracts)
    try:
        d = draft(kind, params, wallet, contracts, reader)
        approvals = missing_approvals(d, wallet, contracts, reader)
    except CallReverted as exc:  # a read of something that does not exist (a token id)
        raise WouldRevert(f"{abi.decode_revert(exc.data).reason}; nothing was prepared") from None
    results = node.simulate([a.call for a in approvals] + [d.main])
    check_simulation(results, approvals)
    fees, nonce = node.fees(), node.nonce(wallet)
    txs = [
        unsigned(
            call,
            node.chain_id,
            padded_gas(result.gas_used) if result.gas_used else None,
            fees,
            nonce + i,
        )
        for i, (call, result) in enumerate(
            zip([a.call for a in approvals] + [d.main], results, strict=True)
        )
    ]
    if txs[-1].get("gas") is None and not approvals:  # simulated with eth_call alone
        txs[-1]["gas"] = hex(padded_gas(node.estimate_gas(d.main)))
    return Prepared(
        kind=kind,
        wallet=wallet,
        summary=d.summary,
        approvals=[
            {"description": a.description, "transaction": tx}
            for a, tx in zip(approvals, txs[:-1], strict=True)
        ],
        transaction=txs[-1],
        quote=[s.public() for s in d.splits],
        gas_used=results[-1].gas_used,
    )
