"""External market data: price and volume of trading pairs from a public exchange REST API.

Disabled by default (``STRIDE_METRICS_MARKET_URL`` unset). :class:`MarketDataSource` is the
interface the sampler uses; :class:`KlinesMarketData` implements it for the widespread
"klines" endpoint (``GET {base}/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=..&limit=1``,
one array per minute: open time, open, high, low, close, base volume, close time, ...). A
minute's candle lands in its own minute, so a late or backfilled reading is still exact.
Tested with recorded responses only (no network on these machines).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import httpx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MarketMinute:
    pair: str
    minute: datetime
    close: float
    volume: float


class MarketDataSource(Protocol):
    def minute(self, pairs: Sequence[str], minute: datetime) -> list[MarketMinute]:
        """The candle of each pair for ``minute``; a pair that fails is left out (a gap)."""


def parse_klines(pair: str, body: object, minute: datetime) -> MarketMinute | None:
    """The candle that opened at ``minute`` in a klines response; None when absent or bad."""
    if not isinstance(body, list):
        return None
    want = int(minute.timestamp() * 1000)
    for candle in body:
        if not isinstance(candle, list) or len(candle) < 6:
            continue
        try:
            if int(candle[0]) != want:
                continue
            return MarketMinute(pair, minute, float(candle[4]), float(candle[5]))
        except (TypeError, ValueError):
            return None
    return None


class KlinesMarketData:
    def __init__(self, base_url: str, client: httpx.Client | None = None) -> None:
        self._base = base_url.rstrip("/")
        self._client = client or httpx.Client(timeout=5.0)

    def minute(self, pairs: Sequence[str], minute: datetime) -> list[MarketMinute]:
        start = int(minute.astimezone(UTC).timestamp() * 1000)
        out = []
        for pair in pairs:
            params: dict[str, str | int] = {
                "symbol": pair,
                "interval": "1m",
                "startTime": start,
                "limit": 1,
            }
            try:
                response = self._client.get(f"{self._base}/api/v3/klines", params=params)
                response.raise_for_status()
                candle = parse_klines(pair, response.json(), minute)
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("market data for %s at %s unavailable: %s", pair, minute, exc)
                continue
            if candle is not None:
                out.append(candle)
        return out
