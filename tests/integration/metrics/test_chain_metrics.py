"""The chain metrics against PostgreSQL: ERC-20 transfer volume per token, marketplace volume
and floor price per collection and currency, from canonical chain logs by block time; true
zeros where nothing moved, no floor (a gap) where nothing was listed, one sample per minute."""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.metrics.catalog import catalog
from core.metrics.sampler import Sampler
from core.metrics.sources import chain_readings
from core.platform.config import Settings
from tests.integration.metrics.conftest import minute_start

pytestmark = pytest.mark.slow

ZERO = "0x" + "0" * 40


def address() -> str:
    return "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8]


class Chain:
    """Canonical (or retracted) logs of one chain of its own, written as the projections do."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.chain_id = random.randint(10**8, 10**9)
        self.index = 0

    def log(
        self,
        at: datetime,
        contract: str,
        event: str,
        *,
        standard: str | None = None,
        moves: list[dict[str, Any]] | None = None,
        canonical: bool = True,
        **args: Any,
    ) -> None:
        self.index += 1
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO chain_logs (chain_id, block_hash, log_index, block_number,"
                    " block_timestamp, tx_hash, contract, event, standard, moves, args,"
                    " canonical) VALUES (:c, :h, :i, :n, :t, :tx, :contract, :event, :standard,"
                    " CAST(:moves AS jsonb), CAST(:args AS jsonb), :canonical)"
                ),
                {
                    "c": self.chain_id,
                    "h": "0x" + uuid.uuid4().hex * 2,
                    "i": self.index,
                    "n": self.index,
                    "t": int(at.timestamp()),
                    "tx": "0x" + uuid.uuid4().hex * 2,
                    "contract": contract,
                    "event": event,
                    "standard": standard,
                    "moves": json.dumps(moves or []),
                    "args": json.dumps({k: str(v) for k, v in args.items()}),
                    "canonical": canonical,
                },
            )

    def transfer(self, at: datetime, token: str, amount: int, **kw: Any) -> None:
        move = {"sender": ZERO, "recipient": address(), "amount": str(amount)}
        self.log(at, token, "Transfer", standard="erc20", moves=[move], **kw)


def test_chain_metrics_by_block_time_from_canonical_logs(
    db_engine: Engine, postgres: Settings
) -> None:
    chain = Chain(db_engine)
    token, nft, market, collection, currency = (address() for _ in range(5))
    minute = minute_start(30)
    # Transfers: two in the minute (5 + 7), one a second after it, one retracted by a
    # reorg, one ERC-721 transfer of the same contract kind of event (not ERC-20 volume).
    chain.transfer(minute, token, 5)
    chain.transfer(minute + timedelta(seconds=59), token, 7)
    chain.transfer(minute + timedelta(minutes=1), token, 1000)
    chain.transfer(minute + timedelta(seconds=3), token, 500, canonical=False)
    chain.log(
        minute,
        nft,
        "Transfer",
        standard="erc721",
        moves=[{"sender": ZERO, "recipient": address(), "token_id": "1", "amount": "1"}],
    )

    end = int((minute + timedelta(minutes=1)).timestamp())
    far = end + 86_400

    def listed(at: datetime, listing: int, price: int, expiry: int = far) -> None:
        chain.log(
            at,
            market,
            "Listed",
            listingId=listing,
            seller=address(),
            collection=collection,
            tokenId=listing,
            currency=currency,
            price=price,
            expiry=expiry,
        )

    listed(minute - timedelta(minutes=2), 1, 100)
    listed(minute - timedelta(minutes=1), 2, 80)
    listed(minute + timedelta(seconds=5), 3, 50)  # cancelled within the minute
    chain.log(minute + timedelta(seconds=20), market, "ListingCancelled", listingId=3)
    listed(minute + timedelta(seconds=6), 4, 10, expiry=end)  # expired at the minute's end
    listed(minute + timedelta(minutes=1, seconds=1), 5, 1)  # by a block after the minute
    chain.log(
        minute + timedelta(seconds=30),
        market,
        "Sale",
        listingId=2,
        buyer=address(),
        price=80,
        fee=2,
        royalty=4,
    )

    sampler = Sampler(db_engine, postgres, lambda _s: None)
    sampler.sync_catalog()
    with db_engine.connect() as conn:
        metrics = catalog(conn)
    member = f"{chain.chain_id}-{collection}-{currency}"
    keys = {m.key: m for m in metrics}
    transfers = f"chain.transfers/{chain.chain_id}-{token}"
    volume, floor = f"marketplace.volume/{member}", f"marketplace.floor/{member}"
    assert {transfers, volume, floor} <= set(keys)
    assert f"chain.transfers/{chain.chain_id}-{nft}" not in keys  # ERC-721 is not a token
    assert keys[floor].source.startswith("chain_logs")

    with db_engine.connect() as conn:
        during = chain_readings(conn, metrics, minute)
        before = chain_readings(conn, metrics, minute - timedelta(minutes=1))
        long_before = chain_readings(conn, metrics, minute - timedelta(minutes=10))
    assert during[transfers] == 12
    assert during[volume] == 80
    assert during[floor] == 100  # 80 sold, 50 cancelled, 10 expired, 1 not listed yet
    assert before[transfers] == 0 and before[volume] == 0  # nothing moved: a true zero
    assert before[floor] == 80  # listings 1 and 2 active at that minute's end
    assert floor not in long_before  # nothing listed yet: no floor, not a floor of 0

    # Through the sampler: stored once per (metric, minute), the first reading wins.
    sampler.sample(minute)
    chain.transfer(minute + timedelta(seconds=10), token, 1)  # a late log of that minute
    sampler.sample(minute)
    with db_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT m.key, s.value FROM metric_samples s JOIN metrics m ON m.id = s.metric_id"
                " WHERE m.key = ANY(:keys) AND s.minute = :minute ORDER BY m.key"
            ),
            {"keys": [transfers, volume, floor], "minute": minute},
        ).all()
    assert sorted((k, v) for k, v in rows) == sorted([(transfers, 12), (volume, 80), (floor, 100)])
