"""The Stride contracts' own projections (vault stakes, marketplace listings and sales,
bridge transfers) are views over the canonical logs: they follow a reorg's retractions."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.chain.contracts import ChainLog
from core.chain.projections import apply
from core.chain.status import forget_chain

pytestmark = pytest.mark.integration
CHAIN_ID = 31395
VAULT, MARKET, BRIDGE, APES = ("0x" + c * 40 for c in "1234")
ALICE, BOB = "0x" + "a" * 40, "0x" + "b" * 40
_index = itertools.count()


def event(name: str, contract: str, block: int, **args: object) -> ChainLog:
    return ChainLog(
        chain_id=CHAIN_ID,
        block_number=block,
        block_hash="0x" + f"{block:064x}",
        block_timestamp=1_900_000_000 + block,
        tx_hash="0x" + "e" * 64,
        log_index=next(_index),
        contract=contract,
        event=name,
        args={k: str(v) for k, v in args.items()},
    )


def rows(engine: Engine, view: str, columns: str) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(f"SELECT {columns} FROM {view} WHERE chain_id = :c ORDER BY 1, 2"),
                {"c": CHAIN_ID},
            )
        ]


def test_views_follow_the_canonical_logs(db_engine: Engine) -> None:
    forget_chain(db_engine, CHAIN_ID)
    stake = event("Staked", VAULT, 1, account=ALICE, amount=100)
    unstake = event("Withdrawn", VAULT, 2, account=ALICE, amount=30)
    nft_in = event("NftStaked", VAULT, 2, account=BOB, collection=APES, tokenId=7, weight=2)
    nft_out = event("NftWithdrawn", VAULT, 3, account=BOB, collection=APES, tokenId=7)
    listed = event(
        "Listed",
        MARKET,
        3,
        listingId=1,
        seller=ALICE,
        collection=APES,
        tokenId=9,
        currency="0x" + "0" * 40,
        price=500,
        expiry=2_000_000_000,
    )
    sold = event("Sale", MARKET, 4, listingId=1, buyer=BOB, price=500, fee=10, royalty=25)
    out = event(
        "BridgeOut", BRIDGE, 4, nonce=1, dstChainId=31338, sender=ALICE, recipient=BOB, amount=5
    )
    apply(db_engine, [stake, unstake, nft_in, listed, sold, out])

    assert rows(db_engine, "vault_token_stakes", "account, staked") == [(ALICE, 70)]
    assert rows(db_engine, "vault_nft_stakes", "account, token_id") == [(BOB, 7)]
    assert rows(db_engine, "marketplace_listings", "listing_id, status, buyer") == [
        (1, "sold", BOB)
    ]
    assert rows(db_engine, "marketplace_sales", "listing_id, seller, token_id, fee") == [
        (1, ALICE, 9, 10)
    ]
    assert rows(db_engine, "bridge_transfers", "direction, dst_chain_id, amount") == [
        ("out", 31338, 5)
    ]

    # A reorg takes back blocks 2-4: their logs are retracted, block 3' withdraws the NFT.
    apply(db_engine, [r.retraction() for r in (unstake, nft_in, listed, sold, out)] + [nft_out])
    assert rows(db_engine, "vault_token_stakes", "account, staked") == [(ALICE, 100)]
    assert rows(db_engine, "vault_nft_stakes", "account, token_id") == []
    assert rows(db_engine, "marketplace_listings", "listing_id, status") == []
    assert rows(db_engine, "bridge_transfers", "direction, amount") == []
    apply(db_engine, [listed])  # the listing comes back on the new branch, unsold
    assert rows(db_engine, "marketplace_listings", "listing_id, status") == [(1, "active")]
