"""The home page of the admin panel (``/admin/``): the figures operations staff ask for
first, each with its time window and a link to the rows behind it.

* Events per game today (UTC), by the events' own (skew-corrected) time.
* Active players today and over the last 7 days (UTC days, today included): players whose
  latest event (``player_totals.last_event_at``) falls in the window.
* Reward commands waiting (``pending``) and ``failed``: counts and amounts per token.
* Dead letters per dead-letter topic (in the topic, and today) with the latest reasons,
  read from Kafka with a bounded, timed-out read: when the broker is down the page still
  renders and says so.
* Every leaderboard, linked to its standings.

Each figure is read in a transaction of its own under the admin statement timeout, so a
figure stopped by it says so without taking the others down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import anyio
from aiokafka import AIOKafkaClient, AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from psycopg import errors as pg_errors
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import Response

from api.admin.standings import human_time, period_label, standings_url
from core.leaderboards import definitions
from core.platform.config import KafkaSettings, get_settings
from core.platform.kafka_security import aiokafka_options
from core.platform.messages import DeadLetter
from core.platform.topics import DEAD_LETTER_TOPICS

log = logging.getLogger("stride.admin.home")

LATEST_REASONS = 5
KAFKA_TIMEOUT_S = 3.0  # the whole Kafka read: connect, offsets, the latest records
ACTIVE_DAYS = 7
T = TypeVar("T")
V = TypeVar("V")


# ---- pure: windows, amounts, links ---------------------------------------------------------


def day_start(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day."""
    return datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC)


def format_amount(amount: Decimal, token: str) -> str:
    """``1,250.5 TRI``: no trailing zeros of the 18 decimals, thousands separated."""
    normal = amount.normalize()
    if normal == normal.to_integral_value():
        normal = normal.quantize(Decimal(1))
    return f"{normal:,f} {token}"


def table_url(request: Request, table: str, **params: Any) -> str:
    """A table's list page (``/admin/<table with - for _>/list``) with its filter parameters
    (sqladmin's: ``<column>=<value>`` and, for operator filters, ``<column>_op=<operation>``)."""
    base = str(request.url_for("admin:index")).rstrip("/")
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{base}/{table.replace('_', '-')}/list" + (f"?{query}" if query else "")


def _since_filter(start: datetime) -> str:
    """A ``greater_than`` filter value that keeps a row of exactly ``start``."""
    return (start - timedelta(microseconds=1)).isoformat()


# ---- the figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GameEvents:
    game_id: str
    name: str
    events: int
    url: str


@dataclass(frozen=True)
class ActivePlayers:
    today: int
    last_days: int
    url: str


@dataclass(frozen=True)
class RewardFigure:
    status: str
    token: str
    commands: int
    amount: str
    oldest: str
    url: str


@dataclass(frozen=True)
class LatestLetter:
    failed_at: str
    reason: str
    where: str


@dataclass(frozen=True)
class DeadLetterTopic:
    topic: str
    in_topic: int
    today: int
    latest: list[LatestLetter]


@dataclass(frozen=True)
class BoardLink:
    id: str
    game_id: str
    game_name: str
    period: str
    url: str


@dataclass(frozen=True)
class Figure(Generic[V]):
    """A figure's value, or why it could not be read (and then ``value`` is None)."""

    value: V | None = None
    problem: str | None = None


@dataclass
class Dashboard:
    today: str
    week_from: str
    now: str
    events: Figure[list[GameEvents]] = field(default_factory=Figure)
    players: Figure[ActivePlayers] = field(default_factory=Figure)
    rewards: Figure[list[RewardFigure]] = field(default_factory=Figure)
    dead_letters: Figure[list[DeadLetterTopic]] = field(default_factory=Figure)
    boards: Figure[list[BoardLink]] = field(default_factory=Figure)


_EVENTS_TODAY = text(
    "SELECT g.game_id, g.name, coalesce(e.events, 0) AS events"
    " FROM games g LEFT JOIN (SELECT game_id, count(*) AS events FROM processed_events"
    "  WHERE occurred_at >= :start AND occurred_at < :end GROUP BY game_id) e"
    " ON e.game_id = g.game_id"
    " WHERE g.is_active OR e.events > 0"
    " ORDER BY events DESC, g.game_id"
)
_ACTIVE_PLAYERS = text(
    "SELECT count(DISTINCT player_id) FILTER (WHERE last_event_at >= :today) AS today,"
    " count(DISTINCT player_id) AS last_days"
    " FROM player_totals WHERE last_event_at >= :since"
)
_OPEN_REWARDS = text(
    "SELECT status, token, count(*) AS commands, sum(amount) AS amount,"
    " min(issued_at) AS oldest"
    " FROM reward_commands WHERE status IN ('pending', 'failed')"
    " GROUP BY status, token ORDER BY status, token"  # failed first
)


def events_today(session: Session, request: Request, now: datetime) -> list[GameEvents]:
    start = day_start(now)
    rows = session.execute(_EVENTS_TODAY, {"start": start, "end": start + timedelta(days=1)})
    return [
        GameEvents(
            row.game_id,
            row.name,
            row.events,
            table_url(
                request,
                "processed_events",
                game_id=row.game_id,
                game_id_op="equals",
                occurred_at=_since_filter(start),
                occurred_at_op="greater_than",
            ),
        )
        for row in rows
    ]


def active_players(session: Session, request: Request, now: datetime) -> ActivePlayers:
    today = day_start(now)
    row = session.execute(
        _ACTIVE_PLAYERS, {"today": today, "since": today - timedelta(days=ACTIVE_DAYS - 1)}
    ).one()
    url = table_url(request, "player_totals", sortBy="last_event_at", sort="desc")
    return ActivePlayers(row.today, row.last_days, url)


def open_rewards(session: Session, request: Request) -> list[RewardFigure]:
    return [
        RewardFigure(
            status=row.status,
            token=row.token,
            commands=row.commands,
            amount=format_amount(row.amount, row.token),
            oldest=human_time(row.oldest),
            url=table_url(
                request,
                "reward_commands",
                status=row.status,
                **{"token": row.token, "token_op": "equals"},
            ),
        )
        for row in session.execute(_OPEN_REWARDS)
    ]


def board_links(session: Session, request: Request, now: datetime) -> list[BoardLink]:
    conn = session.connection()
    names: dict[str, str] = dict(
        conn.execute(text("SELECT game_id, name FROM games")).tuples().all()
    )
    links = []
    for board in definitions.list_leaderboards(conn):
        period = definitions.current_board_period(board, now)
        links.append(
            BoardLink(
                board.id,
                board.game_id,
                names.get(board.game_id, board.game_id),
                period_label(period.start, period.end),
                standings_url(request, leaderboard_id=board.id),
            )
        )
    return links


def _figure(sessions: sessionmaker[Any], read: Callable[[Session], T]) -> Figure[T]:
    """One figure in a transaction of its own; a statement timeout becomes its message."""
    try:
        with sessions() as session, session.begin():
            return Figure(read(session))
    except sa_exc.OperationalError as error:
        if not isinstance(error.orig, pg_errors.QueryCanceled):
            log.warning("home page figure failed: %s", error)
            return Figure(problem="The database did not answer; reload the page in a moment.")
        timeout_s = get_settings().admin_statement_timeout_ms / 1000
        return Figure(
            problem=f"This figure took longer than {timeout_s:g} s and was stopped;"
            " reload the page, or ask an engineer if it keeps happening."
        )


# ---- dead letters, from Kafka --------------------------------------------------------------


def _letter(value: bytes | None, partition: int, offset: int) -> tuple[datetime, LatestLetter]:
    where = f"partition {partition}, offset {offset:,}"
    try:
        letter = DeadLetter.model_validate_json(value or b"")
    except ValidationError:
        unreadable = LatestLetter("-", "(not a readable dead letter)", where)
        return datetime.min.replace(tzinfo=UTC), unreadable
    source = f"{letter.source_topic}, partition {letter.partition}, offset {letter.offset:,}"
    return letter.failed_at, LatestLetter(human_time(letter.failed_at), letter.reason, source)


async def read_dead_letters(
    kafka: KafkaSettings,
    topics: Sequence[str],
    since: datetime,
    *,
    latest: int = LATEST_REASONS,
    timeout_s: float = KAFKA_TIMEOUT_S,
) -> list[DeadLetterTopic]:
    """Per topic: the records it holds, those written since ``since`` and the ``latest``
    newest dead letters. Raises ``TimeoutError`` or ``KafkaError`` when the broker does not
    answer in ``timeout_s`` seconds in all."""
    options: dict[str, Any] = {
        **aiokafka_options(kafka),
        "client_id": "stride-admin-home",
        "request_timeout_ms": int(timeout_s * 1000),
        "retry_backoff_ms": 100,
    }
    metadata = AIOKafkaClient(**options)
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **options)
    try:
        with anyio.fail_after(timeout_s):
            await metadata.bootstrap()
            cluster = await metadata.fetch_all_metadata()
            parts = {
                t: [TopicPartition(t, p) for p in sorted(cluster.partitions_for_topic(t) or ())]
                for t in topics
            }
            every = [tp for tps in parts.values() for tp in tps]
            if not every:
                return [DeadLetterTopic(t, 0, 0, []) for t in topics]
            await consumer.start()
            first = await consumer.beginning_offsets(every)
            end = await consumer.end_offsets(every)
            at_since = await consumer.offsets_for_times(
                {tp: int(since.timestamp() * 1000) for tp in every}
            )
            letters = await _latest_records(consumer, every, first, end, latest)
    finally:
        with anyio.move_on_after(1, shield=True):
            await metadata.close()
            await consumer.stop()
    report = []
    for topic in topics:
        tps = parts.get(topic, [])
        found = [x for tp in tps for x in letters.get(tp, [])]
        newest = sorted(found, key=lambda x: x[0], reverse=True)
        report.append(
            DeadLetterTopic(
                topic,
                sum(end[tp] - first[tp] for tp in tps),
                sum(end[tp] - (o.offset if (o := at_since.get(tp)) else end[tp]) for tp in tps),
                [letter for _, letter in newest[:latest]],
            )
        )
    return report


async def _latest_records(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    first: dict[TopicPartition, int],
    end: dict[TopicPartition, int],
    latest: int,
) -> dict[TopicPartition, list[tuple[datetime, LatestLetter]]]:
    """The last ``latest`` records of each partition, decoded."""
    wanted = [tp for tp in partitions if end[tp] > first[tp]]
    letters: dict[TopicPartition, list[tuple[datetime, LatestLetter]]] = {tp: [] for tp in wanted}
    if not wanted:
        return letters
    consumer.assign(wanted)
    for tp in wanted:
        consumer.seek(tp, max(first[tp], end[tp] - latest))
    remaining = set(wanted)
    while remaining:
        batches = await consumer.getmany(*remaining, timeout_ms=200)
        for tp, records in batches.items():
            for record in records:
                if record.offset < end[tp]:
                    letters[tp].append(_letter(record.value, tp.partition, record.offset))
        for tp in list(remaining):
            if await consumer.position(tp) >= end[tp]:
                remaining.discard(tp)
    return letters


# ---- the page ------------------------------------------------------------------------------


async def dashboard(
    sessions: sessionmaker[Any], request: Request, now: datetime | None = None
) -> Dashboard:
    """Every figure of the home page; the database figures run while Kafka is read."""
    now = now or datetime.now(UTC)
    today = day_start(now)
    board = Dashboard(
        today=f"{today:%-d %b %Y}",
        week_from=f"{today - timedelta(days=ACTIVE_DAYS - 1):%-d %b %Y}",
        now=human_time(now.replace(microsecond=0)),
    )

    def read_database() -> None:
        board.events = _figure(sessions, lambda s: events_today(s, request, now))
        board.players = _figure(sessions, lambda s: active_players(s, request, now))
        board.rewards = _figure(sessions, lambda s: open_rewards(s, request))
        board.boards = _figure(sessions, lambda s: board_links(s, request, now))

    async def read_kafka() -> None:
        settings = get_settings()
        bootstrap = settings.kafka_bootstrap
        try:
            board.dead_letters = Figure(
                await read_dead_letters(settings, DEAD_LETTER_TOPICS, today)
            )
        except (TimeoutError, KafkaError, OSError) as error:
            log.warning("home page: Kafka at %s unreachable: %r", bootstrap, error)
            board.dead_letters = Figure(
                problem=f"Kafka is unreachable at the moment ({bootstrap} did not answer within"
                f" {KAFKA_TIMEOUT_S:g} s), so the dead-letter counts cannot be shown."
                " The rest of this page is up to date."
            )

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(read_kafka)
        await anyio.to_thread.run_sync(read_database)
    return board


async def home_page(templates: Any, sessions: sessionmaker[Any], request: Request) -> Response:
    """``/admin/``: the dashboard above the role summary's list of tables."""
    response: Response = await templates.TemplateResponse(
        request, "sqladmin/index.html", {"dashboard": await dashboard(sessions, request)}
    )
    return response
