"""``/v1/chain``: what the chain projections say about wallets and NFTs, for the app.

A game server (``X-Api-Key``) or a signed-in app user (bearer token) may read. Every answer
carries ``as_of``: the block the projections reflect, the indexer's block, the node's head
and the lag, so the app can say how fresh a balance is. The routes validate and call
:mod:`core.chain.reads`; what the domain refuses maps to its status code in ``api/errors.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.auth import APP_USER_ERRORS, CALLER_ERRORS, AppUserDep, CallerDep
from api.deps import EngineDep, SettingsDep
from api.errors import error_responses
from core.chain import metadata, reads
from core.chain.rpc import Rpc, RpcError
from core.chain.status import chain_status
from core.identity.wallets import list_wallets
from core.platform.config import Settings
from core.platform.errors import Conflict, NotFound

MAX_PAGE = 200
MAX_FILTERS = 50
ADDRESS = r"^0x[0-9a-fA-F]{40}$"
UINT256_MAX = 2**256 - 1

router = APIRouter(prefix="/v1/chain", tags=["chain"], responses=CALLER_ERRORS)

ChainId = Annotated[int, Path(ge=1, le=2**53, description="EVM chain id, e.g. 31337")]
Address = Annotated[str, Path(pattern=ADDRESS, description="0x + 40 hex digits")]
TokenId = Annotated[
    str, Path(pattern=r"^[0-9]{1,78}$", description="The token id, in decimal (uint256)")
]
NOT_INDEXED = error_responses({404: "The chain is not indexed, or no such token or collection"})


class AsOf(BaseModel):
    chain_id: int
    block: int | None = Field(description="the highest block whose logs the answer reflects")
    indexed_block: int | None = Field(description="the indexer's last published block")
    head: int | None = Field(description="the node's head when the indexer last asked")
    lag_blocks: int | None = Field(description="head - indexed_block")
    last_error: str | None


class TokenBalance(BaseModel):
    holder: str
    contract: str
    balance: str = Field(description="raw amount (uint256, decimal string)")
    decimals: int | None
    symbol: str | None
    name: str | None


class TokenBalances(BaseModel):
    as_of: AsOf
    tokens: list[TokenBalance]


class Attribute(BaseModel):
    trait_type: Any = None
    value: Any = None
    display_type: Any = None
    max_value: Any = None


class Metadata(BaseModel):
    status: str = Field(description="ok, pending or failed")
    token_uri: str | None
    name: str | None
    description: str | None
    image: str | None = Field(description="as the metadata says (ipfs://, http(s), data:)")
    image_url: str | None = Field(description="the image as http(s): ipfs:// via the gateway")
    animation_url: str | None
    attributes: list[Attribute]
    content_type: str | None
    reason: str | None = Field(description="why it could not be resolved (status failed)")


class Nft(BaseModel):
    holder: str
    contract: str
    token_id: str
    standard: str
    amount: str
    collection: str | None
    metadata: Metadata | None


class NftPage(BaseModel):
    as_of: AsOf
    items: list[Nft]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class OneNft(BaseModel):
    as_of: AsOf
    contract: str
    token_id: str
    standard: str
    owners: list[Nft]
    metadata: Metadata | None


def _as_of(conn: Connection, settings: Settings, chain_id: int) -> AsOf:
    if chain_id not in settings.indexed_chains:
        raise NotFound(f"chain {chain_id} is not indexed (STRIDE_INDEXER_CHAINS)")
    status = chain_status(conn, chain_id, datetime.now(UTC), settings.indexer_stall_after_s)
    if status is None:
        return AsOf(
            chain_id=chain_id,
            block=None,
            indexed_block=None,
            head=None,
            lag_blocks=None,
            last_error=None,
        )
    return AsOf(
        chain_id=chain_id,
        block=status.projected_block,
        indexed_block=status.indexed_block,
        head=status.head,
        lag_blocks=status.lag,
        last_error=status.last_error
        or (f"head stalled for {status.stalled_s:.0f}s" if status.stalled_s else None),
    )


def _metadata(meta: reads.NftMeta | None) -> Metadata | None:
    if meta is None:
        return None
    return Metadata(
        status=meta.status,
        token_uri=meta.token_uri,
        name=meta.name,
        description=meta.description,
        image=meta.image,
        image_url=meta.image_url,
        animation_url=meta.animation_url,
        attributes=[Attribute(**a) for a in meta.attributes if isinstance(a, dict)],
        content_type=meta.content_type,
        reason=meta.reason,
    )


def _nft(item: reads.NftHolding) -> Nft:
    return Nft(
        holder=item.holder,
        contract=item.contract,
        token_id=str(item.token_id),
        standard=item.standard,
        amount=str(item.amount),
        collection=item.collection_name,
        metadata=_metadata(item.metadata),
    )


def _token_id(value: str) -> int:
    token_id = int(value)
    if token_id > UINT256_MAX:
        raise HTTPException(422, "token_id: must be at most 2**256 - 1")
    return token_id


def wallet_tokens(
    conn: Connection, settings: Settings, chain_id: int, holders: list[str]
) -> TokenBalances:
    """The token balances of ``holders`` (one wallet, or every wallet a user linked)."""
    as_of = _as_of(conn, settings, chain_id)
    rows = reads.token_balances(conn, chain_id, [h.lower() for h in holders])
    return TokenBalances(
        as_of=as_of,
        tokens=[
            TokenBalance(
                holder=r.holder,
                contract=r.contract,
                balance=str(r.amount),
                decimals=r.decimals,
                symbol=r.symbol,
                name=r.name,
            )
            for r in rows
        ],
    )


@dataclass(frozen=True)
class NftFilters:
    """The query of an NFT list: which contracts or named collections, which page, whether
    with metadata (one declaration for every NFT list route)."""

    contract: list[str] | None
    collection: list[str] | None
    limit: int
    cursor: str | None
    metadata: bool


def nft_filters(
    contract: Annotated[
        list[Annotated[str, Query(pattern=ADDRESS)]] | None,
        Query(max_length=MAX_FILTERS, description="only these contracts (repeatable)"),
    ] = None,
    collection: Annotated[
        list[Annotated[str, Query(min_length=1, max_length=128)]] | None,
        Query(max_length=MAX_FILTERS, description="only these named collections (repeatable)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    metadata: Annotated[bool, Query(description="include each NFT's metadata")] = True,
) -> NftFilters:
    return NftFilters(contract, collection, limit, cursor, metadata)


NftFiltersDep = Annotated[NftFilters, Depends(nft_filters)]


def wallet_nfts(
    conn: Connection, settings: Settings, chain_id: int, holders: list[str], filters: NftFilters
) -> NftPage:
    """A page of the NFTs of ``holders`` (one wallet, or every wallet a user linked)."""
    contracts, collections = filters.contract, filters.collection
    limit, cursor, with_metadata = filters.limit, filters.cursor, filters.metadata
    as_of = _as_of(conn, settings, chain_id)
    wanted: set[str] | None = None
    if contracts:
        wanted = {c.lower() for c in contracts}
    if collections:
        named = set(reads.collection_contracts(conn, chain_id, collections))
        wanted = named if wanted is None else wanted & named
    page = reads.nft_holdings(
        conn,
        chain_id,
        [h.lower() for h in holders],
        contracts=sorted(wanted) if wanted is not None else None,
        limit=limit,
        cursor=cursor,
        with_metadata=with_metadata,
    )
    return NftPage(as_of=as_of, items=[_nft(i) for i in page.items], next_cursor=page.next_cursor)


def _linked_wallets(engine: Engine, user_id: str) -> list[str]:
    with Session(engine) as session:
        return [link.address for link in list_wallets(session, user_id)]


@router.get(
    "/{chain_id}/me/tokens",
    response_model=TokenBalances,
    responses={**NOT_INDEXED, **APP_USER_ERRORS},
    summary="The signed-in user's token balances across every wallet they linked",
)
def get_my_tokens(
    chain_id: ChainId, user_id: AppUserDep, engine: EngineDep, settings: SettingsDep
) -> TokenBalances:
    """Each balance names its ``holder`` (one of the user's wallets, ``GET /v1/wallets``); a
    user with no linked wallet gets an empty list."""
    holders = _linked_wallets(engine, user_id)
    with engine.connect() as conn:
        return wallet_tokens(conn, settings, chain_id, holders)


@router.get(
    "/{chain_id}/me/nfts",
    response_model=NftPage,
    responses={**NOT_INDEXED, **APP_USER_ERRORS},
    summary="The signed-in user's NFTs across every wallet they linked, filtered, by pages",
)
def get_my_nfts(
    chain_id: ChainId,
    user_id: AppUserDep,
    engine: EngineDep,
    settings: SettingsDep,
    filters: NftFiltersDep,
) -> NftPage:
    holders = _linked_wallets(engine, user_id)
    with engine.connect() as conn:
        return wallet_nfts(conn, settings, chain_id, holders, filters)


@router.get(
    "/{chain_id}/wallets/{address}/tokens",
    response_model=TokenBalances,
    responses=NOT_INDEXED,
    summary="A wallet's token balances (ERC-20) with symbol and decimals",
)
def get_wallet_tokens(
    chain_id: ChainId,
    address: Address,
    _caller: CallerDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> TokenBalances:
    with engine.connect() as conn:
        return wallet_tokens(conn, settings, chain_id, [address])


@router.get(
    "/{chain_id}/wallets/{address}/nfts",
    response_model=NftPage,
    responses=NOT_INDEXED,
    summary="A wallet's NFTs (ERC-721 and ERC-1155), filtered, by pages",
)
def get_wallet_nfts(
    chain_id: ChainId,
    address: Address,
    _caller: CallerDep,
    engine: EngineDep,
    settings: SettingsDep,
    filters: NftFiltersDep,
) -> NftPage:
    with engine.connect() as conn:
        return wallet_nfts(conn, settings, chain_id, [address], filters)


def _one(
    conn: Connection, settings: Settings, chain_id: int, contract: str, token_id: int
) -> OneNft:
    as_of = _as_of(conn, settings, chain_id)
    holders = reads.nft(conn, chain_id, contract.lower(), token_id)
    return OneNft(
        as_of=as_of,
        contract=contract.lower(),
        token_id=str(token_id),
        standard=holders[0].standard,
        owners=[_nft(h).model_copy(update={"metadata": None}) for h in holders],
        metadata=_metadata(holders[0].metadata),
    )


@router.get(
    "/{chain_id}/nfts/{contract}/{token_id}",
    response_model=OneNft,
    responses=NOT_INDEXED,
    summary="One NFT: its owner(s) and metadata",
)
def get_nft(
    chain_id: ChainId,
    contract: Address,
    token_id: TokenId,
    _caller: CallerDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> OneNft:
    with engine.connect() as conn:
        return _one(conn, settings, chain_id, contract, _token_id(token_id))


@router.post(
    "/{chain_id}/nfts/{contract}/{token_id}/refresh",
    response_model=OneNft,
    responses={
        **NOT_INDEXED,
        **error_responses({409: "Refreshed less than the cooldown ago; retry later"}),
    },
    summary="Fetch one NFT's metadata again now (at most once per cooldown)",
)
async def refresh_nft(
    chain_id: ChainId,
    contract: Address,
    token_id: TokenId,
    _caller: CallerDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> OneNft:
    number = _token_id(token_id)
    address = contract.lower()

    def refresh() -> OneNft:
        with engine.connect() as conn:
            current = _one(conn, settings, chain_id, address, number)
            fetched_at = conn.execute(
                text(
                    "SELECT fetched_at FROM nft_metadata "
                    "WHERE chain_id = :c AND contract = :a AND token_id = :t"
                ),
                {"c": chain_id, "a": address, "t": number},
            ).scalar()
        now = datetime.now(UTC)
        cooldown = settings.nft_metadata_refresh_cooldown_s
        if fetched_at is not None and (now - fetched_at).total_seconds() < cooldown:
            wait = cooldown - (now - fetched_at).total_seconds()
            raise Conflict(
                f"the metadata of this token was fetched {(now - fetched_at).total_seconds():.0f}s "
                f"ago; refresh again in {wait:.0f}s (STRIDE_NFT_METADATA_REFRESH_COOLDOWN_S)"
            )
        rpc = Rpc(settings.indexed_chains[chain_id], timeout_s=settings.indexer_rpc_timeout_s)

        def call(to: str, data: str) -> str | None:
            try:
                return rpc.eth_call(to, data)
            except RpcError:
                return None

        try:
            metadata.resolve_and_store(
                engine, call, chain_id, address, number, current.standard, settings, now
            )
        finally:
            rpc.close()
        with engine.connect() as conn:
            return _one(conn, settings, chain_id, address, number)

    return await run_in_threadpool(refresh)
