"""The catalog of metrics: which metrics exist, derived from the platform's own data.

Each :class:`MetricKind` is a family (one metric per game, per token, per topic, per trading
pair); :func:`wanted_metrics` lists the metrics the platform has now and :func:`sync_catalog`
upserts them into ``metrics`` (a metric of these kinds that stops existing, e.g. of a
deactivated game, is kept with ``is_active = false`` so its history stays readable; metrics
of other kinds, added by hand, are left alone). The chain metrics are per chain and
contract: ERC-20 transfer volume per token, marketplace volume and floor price per
collection and currency (prices in different currencies do not add up).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from psycopg.rows import kwargs_row
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from core.platform.config import MetricsSettings, RewardSettings
from core.platform.db import json_rows
from core.platform.topics import DEAD_LETTER_TOPICS, WEARABLE_SAMPLES


@dataclass(frozen=True)
class MetricKind:
    kind: str
    description: str  # "{}" is the member (game, token, topic, pair)
    unit: str
    source: str


GAME_EVENTS = MetricKind(
    "game.events", "game events of {} processed in the minute", "events", "processed_events"
)
GAME_ACTIVE_PLAYERS = MetricKind(
    "game.active_players",
    "players of {} with at least one event processed in the minute",
    "players",
    "processed_events",
)
GAME_MATCHES = MetricKind(
    "game.matches", "match results of {} processed in the minute", "matches", "processed_events"
)
TOKENS_MINTED = MetricKind(
    "rewards.minted",
    "{} minted by reward commands issued in the minute",
    "tokens",
    "reward_commands",
)
TOKENS_BURNED = MetricKind(
    "rewards.burned",
    "{} burned by reward commands issued in the minute",
    "tokens",
    "reward_commands",
)
DLQ_MESSAGES = MetricKind(
    "kafka.dlq", "messages dead-lettered to {} in the minute", "messages", "Kafka topic"
)
WEARABLE_SAMPLES_IN = MetricKind(
    "wearables.samples",
    "wearable samples received in the minute (all uploads: Fitbit, Oura, Apple Health)",
    "samples",
    f"Kafka topic {WEARABLE_SAMPLES}",
)
MARKET_PRICE = MetricKind(
    "market.price",
    "last trade price of {} in the minute (exchange klines)",
    "quote",
    "market data",
)
MARKET_VOLUME = MetricKind(
    "market.volume",
    "base volume of {} traded in the minute (exchange klines)",
    "base",
    "market data",
)
TOKEN_TRANSFERS = MetricKind(
    "chain.transfers",
    "ERC-20 token {} transferred in the minute (canonical Transfer logs by block time)",
    "base units",
    "chain_logs",
)
MARKETPLACE_VOLUME = MetricKind(
    "marketplace.volume",
    "sale prices of collection-currency {} sold in the minute (by block time)",
    "currency base units",
    "marketplace_sales",
)
MARKETPLACE_FLOOR = MetricKind(
    "marketplace.floor",
    "lowest price of an active listing of collection-currency {} at the minute's end",
    "currency base units",
    "chain_logs (Listed, Sale, ListingCancelled)",
)
KINDS = (
    GAME_EVENTS,
    GAME_ACTIVE_PLAYERS,
    GAME_MATCHES,
    TOKENS_MINTED,
    TOKENS_BURNED,
    DLQ_MESSAGES,
    WEARABLE_SAMPLES_IN,
    MARKET_PRICE,
    MARKET_VOLUME,
    TOKEN_TRANSFERS,
    MARKETPLACE_VOLUME,
    MARKETPLACE_FLOOR,
)


@dataclass(frozen=True)
class WantedMetric:
    key: str
    kind: str
    description: str
    unit: str
    source: str
    game_id: str | None = None


def metric_key(kind: MetricKind, member: str | None = None) -> str:
    return f"{kind.kind}/{member}" if member else kind.kind


def _of(kind: MetricKind, member: str | None, game_id: str | None = None) -> WantedMetric:
    source = kind.source if kind is not DLQ_MESSAGES else f"Kafka topic {member}"
    return WantedMetric(
        metric_key(kind, member),
        kind.kind,
        kind.description.format(member) if member else kind.description,
        kind.unit,
        source,
        game_id,
    )


def token_member(chain_id: int, contract: str) -> str:
    """The member of a token's metric: ``31337-0x5fbd…`` (chain id, contract)."""
    return f"{chain_id}-{contract}"


def collection_member(chain_id: int, collection: str, currency: str) -> str:
    """The member of a collection's metrics: chain id, collection, listing currency."""
    return f"{chain_id}-{collection}-{currency}"


def market_pairs(settings: MetricsSettings) -> list[str]:
    """The trading pairs sampled: none while market data is disabled (no URL)."""
    if not settings.metrics_market_url:
        return []
    return [p.strip().upper() for p in settings.metrics_market_pairs.split(",") if p.strip()]


def wanted_metrics(
    games: Iterable[str],
    tokens: Iterable[str],
    pairs: Sequence[str],
    token_contracts: Iterable[str] = (),
    collections: Iterable[str] = (),
) -> list[WantedMetric]:
    """Every metric the platform has, given its games, reward tokens, trading pairs, the
    ERC-20 contracts seen on chain and the listed collections (as members)."""
    wanted: list[WantedMetric] = []
    for game in sorted(set(games)):
        wanted += [_of(k, game, game) for k in (GAME_EVENTS, GAME_ACTIVE_PLAYERS, GAME_MATCHES)]
    for token in sorted(set(tokens)):
        wanted += [_of(TOKENS_MINTED, token), _of(TOKENS_BURNED, token)]
    wanted += [_of(DLQ_MESSAGES, topic) for topic in DEAD_LETTER_TOPICS]
    wanted.append(_of(WEARABLE_SAMPLES_IN, None))
    for pair in pairs:
        wanted += [_of(MARKET_PRICE, pair), _of(MARKET_VOLUME, pair)]
    wanted += [_of(TOKEN_TRANSFERS, t) for t in sorted(set(token_contracts))]
    for collection in sorted(set(collections)):
        wanted += [_of(MARKETPLACE_VOLUME, collection), _of(MARKETPLACE_FLOOR, collection)]
    return wanted


_UPSERT = text(
    """
    INSERT INTO metrics (key, kind, description, unit, source, game_id)
    SELECT m.key, m.kind, m.description, m.unit, m.source, m.game_id
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS m(key text, kind text, description text,
        unit text, source text, game_id text)
    ON CONFLICT (key) DO UPDATE SET is_active = true, description = excluded.description,
        unit = excluded.unit, source = excluded.source
    WHERE NOT metrics.is_active OR metrics.description IS DISTINCT FROM excluded.description
    """
)


# The chain's members: ERC-20 contracts with a canonical Transfer, collections with a
# canonical listing (in each listing's currency).
_TOKEN_CONTRACTS = text(
    "SELECT DISTINCT chain_id, contract FROM chain_logs"
    " WHERE canonical AND event = 'Transfer' AND standard = 'erc20'"
)
_COLLECTIONS = text("SELECT DISTINCT chain_id, collection, currency FROM marketplace_listings")


def sync_catalog(engine: Engine, settings: MetricsSettings, reward: RewardSettings) -> int:
    """Upsert the wanted metrics, deactivate the others; returns how many are active."""
    with engine.begin() as conn:
        games = conn.execute(text("SELECT game_id FROM games WHERE is_active")).scalars().all()
        token_contracts = [token_member(*r) for r in conn.execute(_TOKEN_CONTRACTS)]
        collections = [collection_member(*r) for r in conn.execute(_COLLECTIONS)]
        wanted = wanted_metrics(
            games, [reward.reward_token], market_pairs(settings), token_contracts, collections
        )
        conn.execute(_UPSERT, json_rows(w.__dict__ for w in wanted))
        conn.execute(
            text(
                "UPDATE metrics SET is_active = false"
                " WHERE is_active AND kind = ANY(:kinds) AND key <> ALL(:keys)"
            ),
            {"kinds": [k.kind for k in KINDS], "keys": [w.key for w in wanted]},
        )
    return len(wanted)


@dataclass(frozen=True)
class CatalogEntry:
    id: int
    key: str
    kind: str
    description: str
    unit: str
    source: str
    game_id: str | None
    fire_factor: float
    resolve_factor: float
    window_minutes: int
    min_samples: int
    pending_points: int
    is_active: bool


_COLUMNS = (
    "id, key, kind, description, unit, source, game_id, fire_factor, resolve_factor, "
    "window_minutes, min_samples, pending_points, is_active"
)


def catalog(
    conn: Connection, game_id: str | None = None, *, active_only: bool = True
) -> list[CatalogEntry]:
    """The catalog sorted by key; ``game_id``: only that game's metrics and the platform's."""
    rows = conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM metrics WHERE (is_active OR NOT :active)"  # noqa: S608
            " AND (CAST(:game AS text) IS NULL OR game_id IS NULL OR game_id = :game)"
            " ORDER BY key"
        ),
        {"active": active_only, "game": game_id},
    )
    return [CatalogEntry(**row._mapping) for row in rows]


_BY_KEY = f"SELECT {_COLUMNS} FROM metrics WHERE key = %s"  # noqa: S608 (fixed columns)


def metric_by_key(conn: Connection, key: str) -> CatalogEntry | None:
    """One metric by its key, or None. Straight from psycopg, by a prepared statement: a
    series miss looks its metric up first, and SQLAlchemy's ``text()`` execution and row cost
    105-112 µs of CPU per lookup against 32 µs this way (p50 of 300, load average 10.6;
    docs/metrics.md, "Series miss, round 4")."""
    driver = conn.connection.driver_connection
    with driver.cursor(row_factory=kwargs_row(CatalogEntry)) as cursor:  # type: ignore[union-attr]
        cursor.execute(_BY_KEY, (key,), prepare=True)
        return cursor.fetchone()
