"""``/v1/metrics``: the catalog, a metric's last 24 h, the volatility ranking, alerts and
subscriptions; ``/metrics/dashboard``: the page that shows them.

Every ``/v1/metrics`` path needs a caller: an app user (bearer token) sees every metric; a
game server (``X-Api-Key``) sees its own game's metrics and the platform-wide ones, and may
subscribe only to those. Series and rankings change once a minute and many viewers ask for
the same ones, so they are cached per API process for ``metrics_cache_ttl_s`` (10 s), within
``metrics_cache_max_mb`` of JSON; a series carries an ``ETag`` of its bytes, so a viewer
polling it gets a 304 until it changes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.auth import CALLER_ERRORS, Caller, CallerDep
from api.body import limited_body_route
from api.deps import EngineDep, SettingsDep, per_app
from api.errors import NOT_JSON, error_responses
from api.etags import IfNoneMatch, content_tag, tag_matches
from core.metrics import reads
from core.metrics.alertmanager import sync_alertmanager_config
from core.metrics.catalog import CatalogEntry, catalog, metric_by_key
from core.metrics.contracts import METRIC_KEY_PATTERN
from core.metrics.rules import RankBy
from core.metrics.subscriptions import Owner, subscribe, subscriptions_of, unsubscribe
from core.platform.config import Settings
from core.platform.errors import NotFound

STATIC = Path(__file__).resolve().parents[1] / "static" / "metrics"
MAX_BODY_BYTES = 8 * 1024

router = APIRouter(
    prefix="/v1/metrics",
    tags=["metrics"],
    responses=CALLER_ERRORS,
    route_class=limited_body_route(lambda _s: MAX_BODY_BYTES, "a subscription is a few fields"),
)
dashboard_router = APIRouter(tags=["metrics"], include_in_schema=False)

T = TypeVar("T")


class _Flight:
    """A computation under way that other requests of the same key wait for."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.ok = False


class TtlCache:
    """Recent answers per API process, bounded by count and by bytes (``weight``, e.g. a
    series' JSON: 24 h is ~190 kB, a week ~1.3 MB, so a count alone would let 10,000 metrics'
    viewers hold gigabytes). Concurrent misses of one key compute it once: the others wait
    for that answer (every viewer of a metric asks at the same minute)."""

    def __init__(
        self,
        ttl_s: float,
        size: int = 4096,
        max_bytes: int = 64 << 20,
        weight: Callable[[Any], int] = lambda _v: 1024,
    ) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self.max_bytes = max_bytes
        self.weight = weight
        self.bytes = 0
        self._items: OrderedDict[tuple, tuple[float, Any, int]] = OrderedDict()
        self._flights: dict[tuple, _Flight] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def peek(self, key: tuple) -> Any:
        """A fresh answer without computing anything (None: a miss): cheap enough for the
        event loop, so that a hit needs no hop to a worker thread."""
        with self._lock:
            hit = self._items.get(key)
        return hit[1] if hit is not None and time.monotonic() - hit[0] < self.ttl_s else None

    def get_or_compute(self, key: tuple, compute: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and now - hit[0] < self.ttl_s:
                return hit[1]
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.ok:
                return flight.value
            return compute()  # the leader failed (e.g. a 404): this request finds out itself
        try:
            value = compute()
            flight.value, flight.ok = value, True
        finally:
            with self._lock:
                del self._flights[key]
                if flight.ok:
                    self._store(key, now, flight.value)
            flight.done.set()
        return value

    def _store(self, key: tuple, now: float, value: Any) -> None:
        """Under the lock: ``value`` in, the oldest entries out to the bounds."""
        weight = self.weight(value)
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= old[2]
        if weight > self.max_bytes:
            return  # larger than the whole cache: served, not kept
        self._items[key] = (now, value, weight)
        self.bytes += weight
        while len(self._items) > self.size or self.bytes > self.max_bytes:
            _, (_, _, dropped) = self._items.popitem(last=False)
            self.bytes -= dropped


class Body(NamedTuple):
    """A cached answer as it is sent: its JSON and its entity tag."""

    json: bytes
    etag: str


def _weight(value: Any) -> int:
    return len(value.json) + 200 if isinstance(value, Body) else 1024


def _cache(request: Request, settings: Settings) -> TtlCache:
    return per_app(
        request,
        "metrics_cache",
        lambda: TtlCache(
            settings.metrics_cache_ttl_s,
            max_bytes=settings.metrics_cache_max_mb << 20,
            weight=_weight,
        ),
    )


def _scope(caller: Caller) -> str | None:
    """The game whose metrics a game server sees (with the platform's); None: all."""
    return caller.game_id


def _owner(caller: Caller) -> Owner:
    if caller.game_id is not None:
        return Owner("game", caller.game_id)
    assert caller.user_id is not None
    return Owner("user", caller.user_id)


class MetricPublic(BaseModel):
    key: str = Field(examples=["game.events/tri"])
    kind: str
    description: str
    unit: str
    source: str
    game_id: str | None
    fire_factor: float = Field(description="a point above this many times its baseline fires")
    resolve_factor: float = Field(description="a firing metric resolves at or below this")
    window_minutes: int = Field(description="the baseline: mean of the samples this far back")
    min_samples: int = Field(description="fewer samples in the window: the point is not judged")
    pending_points: int = Field(description="consecutive points above the line before firing")


def _public(entry: CatalogEntry) -> MetricPublic:
    return MetricPublic(**{k: getattr(entry, k) for k in MetricPublic.model_fields})


def _visible(conn: Any, key: str, caller: Caller, cache: TtlCache | None = None) -> CatalogEntry:
    """The metric ``key`` if the caller may see it (404 otherwise). With ``cache``, a metric
    found in the last ``ttl_s`` is not looked up again (one round trip to PostgreSQL less per
    series read; a rule changed shows within the TTL, as the cached series do)."""

    def lookup() -> CatalogEntry:
        metric = metric_by_key(conn, key)
        if metric is None:  # raised, not returned: an unknown key is not cached
            raise NotFound(f"no metric {key!r}; GET /v1/metrics lists them")
        return metric

    metric = lookup() if cache is None else cache.get_or_compute(("metric", key), lookup)
    scope = _scope(caller)
    if scope is not None and metric.game_id not in (None, scope):
        raise NotFound(f"no metric {key!r}; GET /v1/metrics lists them")
    return metric


@router.get("", summary="The catalog of metrics")
def list_metrics(caller: CallerDep, engine: EngineDep) -> list[MetricPublic]:
    with engine.connect() as conn:
        return [_public(e) for e in catalog(conn, _scope(caller))]


class PointPublic(BaseModel):
    minute: datetime = Field(description="the sample's minute (a bucket's start when downsampled)")
    value: float = Field(description="the sample (a bucket's mean)")
    min: float
    max: float
    count: int = Field(description="samples in the bucket (1 at minute resolution)")
    baseline: float | None = Field(description="mean of the window before it; null: too few")
    threshold: float | None = Field(description="fire_factor x baseline: the alert line")


class SeriesHead(BaseModel):
    """A series' answer but its points."""

    metric: MetricPublic
    start: datetime
    end: datetime
    step_minutes: int


class SeriesPublic(SeriesHead):
    points: list[PointPublic] = Field(description="gaps (missed minutes) are absent, not zeros")


MetricKey = Annotated[
    str, Query(max_length=200, pattern=METRIC_KEY_PATTERN, examples=["game.events/tri"])
]


@router.get(
    "/series",
    summary="A metric's last hours, minute by minute, with its baseline and alert line",
    response_model=SeriesPublic,
    responses={
        **error_responses({404: "No such metric (or not visible to this game)"}),
        304: {"description": "Not Modified: the If-None-Match tag is the current series'"},
    },
)
async def metric_series(
    request: Request,
    caller: CallerDep,
    engine: EngineDep,
    settings: SettingsDep,
    metric: MetricKey,
    if_none_match: IfNoneMatch = None,
    hours: Annotated[int, Query(ge=1, le=reads.MAX_SERIES_HOURS)] = 24,
    step: Annotated[int, Query(ge=1, le=1440, description="minutes per point (downsampling)")] = 1,
) -> Response:
    # The minute just ended: every request of a minute shares one cache key.
    end = datetime.now(UTC).replace(second=0, microsecond=0)

    cache = _cache(request, settings)

    def compute() -> Body:
        # Autocommit: the reads open no transaction, so returning the connection to the pool
        # costs no ROLLBACK round trip, and psycopg keeps its prepared statements (a rollback
        # drops them: each read would be parsed and planned again).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            entry = _visible(conn, metric, caller, cache)
            points = reads.series_json(conn, entry, end, hours, step)
        # The points go out as reads.series_json wrote them (PointPublic's keys, no model
        # per point); pydantic writes the rest. A cache hit sends the bytes as they are.
        head = SeriesHead(
            metric=_public(entry), start=end - timedelta(hours=hours), end=end, step_minutes=step
        ).model_dump_json()
        body = b"".join((head[:-1].encode(), b',"points":', points, b"}"))
        return Body(body, content_tag(body))

    key = ("series", metric, hours, step, end, _scope(caller))
    answer = cache.peek(key) or await run_in_threadpool(cache.get_or_compute, key, compute)
    # A viewer polling the same minute revalidates: 304, no body (the tag is the bytes').
    headers = {"ETag": answer.etag, "Cache-Control": "private, no-cache"}
    if tag_matches(if_none_match, answer.etag):
        return Response(status_code=304, headers=headers)
    return Response(content=answer.json, media_type="application/json", headers=headers)


class RankedPublic(BaseModel):
    rank: int
    key: str
    description: str
    unit: str
    count: int = Field(description="samples in the window")
    mean: float
    stddev: float = Field(description="sample standard deviation")
    cv: float | None = Field(description="stddev / |mean|; null when the mean is 0")


class RankingPublic(BaseModel):
    by: RankBy
    window_minutes: int
    start: datetime = Field(
        description="the window's start: window_minutes before end, back to its hour when "
        "the window is an hour or more (whole hours come from the hourly rollups)"
    )
    end: datetime
    metrics: list[RankedPublic]


@router.get("/ranking", summary="Metrics by volatility over a window, most volatile first")
async def metric_ranking(
    request: Request,
    caller: CallerDep,
    engine: EngineDep,
    settings: SettingsDep,
    by: Annotated[
        RankBy,
        Query(description="cv (default): comparable across scales; stddev: the raw figure"),
    ] = RankBy.cv,
    window_minutes: Annotated[int, Query(ge=2, le=reads.MAX_RANKING_MINUTES)] = 24 * 60,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> RankingPublic:
    end = datetime.now(UTC).replace(second=0, microsecond=0)

    def compute() -> RankingPublic:
        with engine.connect() as conn:
            ranked = reads.ranking(conn, end, window_minutes, by, limit, _scope(caller))
        return RankingPublic(
            by=by,
            window_minutes=window_minutes,
            start=reads.ranking_start(end, window_minutes),
            end=end,
            metrics=[RankedPublic(**r.__dict__) for r in ranked],
        )

    key = ("ranking", by, window_minutes, limit, end, _scope(caller))
    cache = _cache(request, settings)
    return cache.peek(key) or await run_in_threadpool(cache.get_or_compute, key, compute)


class AlertPublic(BaseModel):
    id: int
    metric_key: str
    state: Literal["firing", "resolved"]
    fired_minute: datetime
    fired_value: float
    baseline: float = Field(description="the trailing mean it was compared with")
    threshold: float
    resolved_minute: datetime | None
    resolved_value: float | None
    notified: str | None = Field(description="what Alertmanager was last told")


@router.get("/alerts", summary="Alert episodes: the firing ones, or the history")
def metric_alerts(
    caller: CallerDep,
    engine: EngineDep,
    state: Annotated[Literal["active", "all"], Query()] = "active",
    metric: Annotated[str | None, Query(max_length=200, pattern=METRIC_KEY_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertPublic]:
    with engine.connect() as conn:
        rows = reads.alerts(
            conn,
            active_only=state == "active",
            metric_key=metric,
            game_id=_scope(caller),
            limit=limit,
        )
    return [AlertPublic(**r.__dict__) for r in rows]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = Field(max_length=200, pattern=METRIC_KEY_PATTERN, examples=["game.events/tri"])
    webhook_url: str = Field(
        max_length=2048,
        description="https (http on the local stack), no credentials in the URL",
        examples=["https://hooks.example.com/stride/3f9a"],
    )


class SubscriptionPublic(BaseModel):
    id: uuid.UUID
    metric: str
    webhook_url: str
    created_at: datetime


def _sync_alertmanager(engine: Any, settings: Any) -> None:
    """Routes for the new subscriptions now; if Alertmanager is down, the sampler's
    per-minute reconcile loads them when it is back."""
    sync_alertmanager_config(engine, settings)


@router.post(
    "/subscriptions",
    status_code=201,
    summary="Subscribe a webhook to a metric (same metric and URL again: the existing one)",
    responses={
        **NOT_JSON,
        **error_responses(
            {
                200: "It existed already",
                403: "A game may subscribe only to its own game's metrics",
                404: "No such metric",
                413: f"Body larger than {MAX_BODY_BYTES} bytes",
                422: "The URL is refused (scheme, credentials, address)",
            }
        ),
    },
)
async def create_subscription(
    body: SubscriptionCreate,
    response: Response,
    caller: CallerDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> SubscriptionPublic:
    def create() -> tuple[Any, bool]:
        with engine.begin() as conn:
            metric = _visible(conn, body.metric, caller)
            return subscribe(
                conn, _owner(caller), metric, body.webhook_url, local=settings.is_local
            )

    subscription, created = await run_in_threadpool(create)
    if not created:
        response.status_code = 200
    await run_in_threadpool(_sync_alertmanager, engine, settings)
    return SubscriptionPublic(
        id=subscription.id,
        metric=subscription.metric_key,
        webhook_url=subscription.webhook_url,
        created_at=subscription.created_at,
    )


@router.get("/subscriptions", summary="Your subscriptions")
def list_subscriptions(caller: CallerDep, engine: EngineDep) -> list[SubscriptionPublic]:
    with engine.connect() as conn:
        return [
            SubscriptionPublic(
                id=s.id, metric=s.metric_key, webhook_url=s.webhook_url, created_at=s.created_at
            )
            for s in subscriptions_of(conn, _owner(caller))
        ]


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    summary="Delete one of your subscriptions",
    responses=error_responses({404: "No such subscription of yours"}),
)
async def delete_subscription(
    subscription_id: uuid.UUID, caller: CallerDep, engine: EngineDep, settings: SettingsDep
) -> Response:
    def delete() -> None:
        with engine.begin() as conn:
            unsubscribe(conn, _owner(caller), subscription_id)

    await run_in_threadpool(delete)
    await run_in_threadpool(_sync_alertmanager, engine, settings)
    return Response(status_code=204)


# ---- the dashboard (public page; its data needs the caller's credentials) ----------------


@dashboard_router.get("/metrics/dashboard", response_class=HTMLResponse)
def dashboard() -> FileResponse:
    return FileResponse(STATIC / "dashboard.html", media_type="text/html")


@dashboard_router.get("/metrics/static/{name}")
def dashboard_asset(name: str) -> FileResponse:
    allowed = {p.name: p for p in STATIC.iterdir() if p.is_file()}
    if name not in allowed:
        raise NotFound(f"no dashboard file {name!r}")
    media = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
    return FileResponse(allowed[name], media_type=media.get(allowed[name].suffix, "text/plain"))
