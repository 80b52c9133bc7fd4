"""The battle engine agent: battles.requests.v1 -> resolved, rated battles -> game.events.v1.

Runs :mod:`streams.pipeline`: invalid requests go to ``battles.requests.dlq.v1`` with the
reason and the original bytes; each valid batch is resolved and rated in ONE transaction by
:func:`core.battles.store.resolve_batch` (a battle already resolved changes nothing); the
``match_result`` events of the batch's resolved battles are then published to
``game.events.v1`` (event ids derived from battle and player, so the scoring agent counts a
replayed battle once), so totals, leaderboards and rewards follow the existing path; only
then is the batch acked. Batches are group commits (:func:`streams.pipeline.run_coalesced`):
what queued while a transaction ran is the next transaction, and a batch's publish overlaps
the next one's write. The ``battles`` worker role's one agent (``streams/__main__.py``):
its own processes and consumer group.
"""

from __future__ import annotations

from datetime import UTC, datetime

from faust import StreamT
from prometheus_client import Counter, Histogram

from core.battles.contracts import BattleRequest, parse_battle_request
from core.battles.store import BatchOutcome, resolve_batch
from core.platform.db import engine_for
from core.platform.messages import Consumed
from core.platform.topics import BATTLE_REQUESTS, BATTLE_REQUESTS_DLQ, GAME_EVENTS
from streams import pipeline
from streams.app import app, raw_topic, send_and_wait, settings

engine = engine_for(settings.db_url)
battle_requests_topic = raw_topic(BATTLE_REQUESTS)


# The battles role's own series (beside the pipeline's, labelled battle_engine).
BATTLES = Counter("stride_battles", "Battle requests the engine handled, by outcome", ["outcome"])
QUEUED_SECONDS = Histogram(
    "stride_battles_queued_seconds",
    "From a battle request's Kafka timestamp to its batch committed (resolved or rejected)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


def write(valid: list[Consumed[BattleRequest]]) -> BatchOutcome:
    result = resolve_batch(engine, [c.value for c in valid], datetime.now(UTC))
    done = datetime.now(UTC)
    for consumed in valid:
        QUEUED_SECONDS.observe((done - consumed.record_time).total_seconds())
    return result


def outcome(result: BatchOutcome) -> pipeline.Outcome:
    BATTLES.labels("resolved").inc(result.resolved)
    BATTLES.labels("rejected").inc(result.rejected)
    BATTLES.labels("duplicate").inc(result.duplicates)
    return pipeline.Outcome(
        summary=(
            f"{result.resolved} resolved, {result.rejected} rejected, "
            f"{result.duplicates} already done, {len(result.events)} match results"
        ),
        publish={GAME_EVENTS: result.events},  # already (key, JSON) records
    )


ENGINE = pipeline.Pipeline(
    name="battle_engine",
    parse=parse_battle_request,
    write=lambda valid: write(valid),  # looked up per batch, so tests can stand in
    outcome=outcome,
    dead_letter_topic=BATTLE_REQUESTS_DLQ,
)
_send_all = send_and_wait  # a module name, so tests can stand in for the broker


@app.agent(battle_requests_topic)
async def resolve_battles(stream: StreamT) -> None:
    await pipeline.run_coalesced(
        stream,
        ENGINE,
        batch_size=settings.battles_batch_size,
        within_s=settings.battles_batch_within_s,
        send=lambda: _send_all,
    )
