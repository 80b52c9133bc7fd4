"""The parameters of the app's write flows: one pydantic model per kind of action (the API's
request bodies), and the checks of uint256 values the models leave to the domain."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.platform.errors import Invalid

UINT256_MAX = 2**256 - 1
DEFAULT_EXPIRY_S = 7 * 86_400
MAX_EXPIRY_S = 365 * 86_400

Uint = Annotated[
    str, Field(pattern=r"^[0-9]{1,78}$", description="uint256 as a decimal string", examples=["1"])
]
Address = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="0x + 40 hex digits")]


class ActionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-fA-F-]{36}$",
        description="A UUID of your own: preparing again with the same id and parameters "
        "answers the same action (a retry), with other parameters a 409",
    )
    wallet: Address | None = Field(
        default=None, description="Which linked wallet signs (default: the primary one)"
    )


class StakeTokens(ActionParams):
    amount: Uint = Field(description="Game token wei to stake")


class UnstakeTokens(ActionParams):
    amount: Uint = Field(description="Staked game token wei to withdraw")


class NftRef(ActionParams):
    collection: Address | None = Field(default=None, description="Default: StrideItems")
    token_id: Uint


class Claim(ActionParams):
    pass


class Expiring(ActionParams):
    expires_in_s: int = Field(
        default=DEFAULT_EXPIRY_S, ge=60, le=MAX_EXPIRY_S, description="From the latest block"
    )


class ListNft(NftRef, Expiring):
    price: Uint
    currency: Literal["token", "native"] = Field(
        default="token", description="token: the game token; native: the chain's coin"
    )


class ListingRef(ActionParams):
    listing_id: Uint


class MakeOffer(NftRef, Expiring):
    amount: Uint = Field(description="Game token wei offered")


class OfferRef(ActionParams):
    offer_id: Uint


class ProposeSwap(Expiring):
    give_collection: Address | None = Field(default=None, description="Default: StrideItems")
    give_token_id: Uint
    give_amount: Uint = Field(default="0", description="Game tokens added to the NFT you give")
    want_collection: Address | None = Field(
        default=None, description="The NFT you want (omit for tokens only)"
    )
    want_token_id: Uint = Field(default="0", description="The NFT's id (with want_collection)")
    want_amount: Uint = Field(default="0", description="Game tokens you want")
    taker: Address | None = Field(default=None, description="Only this address may accept")


class SwapRef(ActionParams):
    swap_id: Uint


class Bridge(ActionParams):
    amount: Uint
    destination_chain_id: int = Field(ge=1, le=2**53)
    recipient: Address | None = Field(default=None, description="Default: the same wallet")


class Kind(StrEnum):
    stake_tokens = "stake-tokens"
    unstake_tokens = "unstake-tokens"
    stake_nft = "stake-nft"
    unstake_nft = "unstake-nft"
    claim = "claim"
    list = "list"
    cancel_listing = "cancel-listing"
    buy = "buy"
    make_offer = "make-offer"
    cancel_offer = "cancel-offer"
    accept_offer = "accept-offer"
    propose_swap = "propose-swap"
    cancel_swap = "cancel-swap"
    accept_swap = "accept-swap"
    bridge = "bridge"


PARAMS: dict[Kind, type[ActionParams]] = {
    Kind.stake_tokens: StakeTokens,
    Kind.unstake_tokens: UnstakeTokens,
    Kind.stake_nft: NftRef,
    Kind.unstake_nft: NftRef,
    Kind.claim: Claim,
    Kind.list: ListNft,
    Kind.cancel_listing: ListingRef,
    Kind.buy: ListingRef,
    Kind.make_offer: MakeOffer,
    Kind.cancel_offer: OfferRef,
    Kind.accept_offer: OfferRef,
    Kind.propose_swap: ProposeSwap,
    Kind.cancel_swap: SwapRef,
    Kind.accept_swap: SwapRef,
    Kind.bridge: Bridge,
}


def uint(value: str, name: str) -> int:
    number = int(value)
    if number > UINT256_MAX:
        raise Invalid(f"{name}: must be at most 2**256 - 1")
    return number


def positive(value: str, name: str) -> int:
    number = uint(value, name)
    if number == 0:
        raise Invalid(f"{name}: must be more than 0")
    return number
