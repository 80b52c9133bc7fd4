"""The sweeper: the scheduled expiries and refunds nothing else runs on time.

Each sweep is one domain function that takes at most ``STRIDE_SWEEP_BATCH_SIZE`` due rows
with ``FOR UPDATE SKIP LOCKED`` and changes them in one transaction; a pass repeats it,
batch after batch, until a batch comes back short. So two sweepers (or a sweeper and a
user's request that touches the same row) each take a disjoint set and nothing is released
twice, and a crash loses at most one uncommitted batch, which the next pass takes again.

* ``holds``: purchases held for a burn not authorized by ``payment_due_at`` give their
  stock back (``payment_failed``) (:func:`core.content.inventory.expire_unpaid`);
* ``gifts``: offered gifts past ``expires_at`` return their escrow to the giver
  (:func:`core.content.gifts.expire_due`);
* ``uploads``: incomplete tus uploads past their expiry are ``expired`` and their parts
  deleted (:func:`core.content.uploads.expire_uploads`);
* ``refunds``: paid grants whose items could not be granted (``refund_due``) get their
  refund mint, one command per grant (:func:`core.content.inventory.issue_refunds`).

The schedule is pure (:class:`Schedule`); the loop (:func:`serve`) only sleeps until the
next sweep is due, runs it, counts it (``stride_sweep_*`` metrics), logs a JSON line per
pass that changed something and writes the heartbeat the supervisor's probe reads. No
Kafka: the refund mint is a ``reward_commands`` row, the chain writer's queue of record.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import Counter
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from core.content import gifts, inventory, uploads
from core.content.storage import storage_for
from core.platform.config import Settings, SweepSettings

log = logging.getLogger("stride.sweeper")

ROWS = Counter("stride_sweep_rows", "rows a sweep changed (released, expired, refunded)", ["sweep"])
PASSES = Counter("stride_sweep_passes", "sweep passes completed", ["sweep"])
ERRORS = Counter(
    "stride_sweep_errors", "sweep passes that failed (retried next interval)", ["sweep"]
)

HEARTBEAT_S = 5.0  # the loop wakes at least this often, so the heartbeat stays fresh
MAX_AGE_S = 30.0  # older heartbeat: the sweeper is stuck or gone


class SweepName(enum.StrEnum):
    holds = "holds"
    gifts = "gifts"
    uploads = "uploads"
    refunds = "refunds"


Batch = Callable[[Engine, Settings, datetime, int], int]


def _holds(engine: Engine, _settings: Settings, now: datetime, limit: int) -> int:
    with Session(engine) as session, session.begin():
        return inventory.expire_unpaid(session, now, limit=limit)


def _gifts(engine: Engine, _settings: Settings, now: datetime, limit: int) -> int:
    with Session(engine) as session, session.begin():
        return gifts.expire_due(session, now, limit=limit)


def _uploads(engine: Engine, settings: Settings, now: datetime, limit: int) -> int:
    # The bytes go after the commit; the API's own spool files stay the API's to clean.
    return uploads.expire_uploads(engine, storage_for(settings), now, limit=limit)


def _refunds(engine: Engine, _settings: Settings, now: datetime, limit: int) -> int:
    with Session(engine) as session, session.begin():
        return inventory.issue_refunds(session, now, limit=limit)


@dataclass(frozen=True)
class Sweep:
    name: SweepName
    batch: Batch  # one transaction: up to ``limit`` rows, how many it changed
    interval: Callable[[SweepSettings], float]


SWEEPS: dict[SweepName, Sweep] = {
    s.name: s
    for s in (
        Sweep(SweepName.holds, _holds, lambda c: c.sweep_holds_interval_s),
        Sweep(SweepName.gifts, _gifts, lambda c: c.sweep_gifts_interval_s),
        Sweep(SweepName.uploads, _uploads, lambda c: c.sweep_uploads_interval_s),
        Sweep(SweepName.refunds, _refunds, lambda c: c.sweep_refunds_interval_s),
    )
}


@dataclass
class Schedule:
    """When each sweep is due next (monotonic seconds); pure. Every sweep is due at once."""

    intervals: dict[SweepName, float]
    next_at: dict[SweepName, float] = field(default_factory=dict)

    def due(self, now: float) -> list[SweepName]:
        return [n for n in self.intervals if self.next_at.get(n, float("-inf")) <= now]

    def ran(self, name: SweepName, now: float) -> None:
        """The pass ended at ``now`` (done or failed): the next one is an interval later."""
        self.next_at[name] = now + self.intervals[name]

    def wait_s(self, now: float, at_most: float = HEARTBEAT_S) -> float:
        """How long to sleep: until the next sweep is due, at most ``at_most``."""
        soonest = min((self.next_at.get(n, now) for n in self.intervals), default=now + at_most)
        return max(0.0, min(at_most, soonest - now))


@dataclass(frozen=True)
class PassResult:
    sweep: SweepName
    rows: int
    batches: int
    duration_ms: float


def run_pass(
    engine: Engine,
    settings: Settings,
    sweep: Sweep,
    *,
    stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PassResult:
    """One pass of a sweep: batches (each its own transaction) until one comes back short
    or ``stop()``; counted, and logged when it changed anything."""
    started = time.perf_counter()
    limit = settings.sweep_batch_size
    rows = batches = 0
    while True:
        changed = sweep.batch(engine, settings, clock(), limit)
        rows += changed
        batches += 1
        if changed < limit or stop():
            break
    result = PassResult(sweep.name, rows, batches, (time.perf_counter() - started) * 1000)
    PASSES.labels(sweep.name.value).inc()
    if rows:
        ROWS.labels(sweep.name.value).inc(rows)
        log.info(
            "sweep %s: %d rows in %d batches",
            sweep.name.value,
            rows,
            batches,
            extra={
                "sweep": sweep.name.value,
                "rows": rows,
                "batches": batches,
                "duration_ms": round(result.duration_ms, 1),
            },
        )
    return result


def selected(only: Iterable[SweepName] | None) -> list[Sweep]:
    names = list(only or [])
    return [SWEEPS[n] for n in names] if names else list(SWEEPS.values())


def run_once(engine: Engine, settings: Settings, sweeps: Iterable[Sweep]) -> list[PassResult]:
    """``stride sweep --once``: one pass of each sweep, in order; a failure stops here."""
    return [run_pass(engine, settings, s) for s in sweeps]


# What is due now, per sweep (``stride status``): a backlog that stays up means the
# sweeper is not keeping up or not running. Holds include those authorized and on their way.
_DUE = text(
    """
    SELECT
        (SELECT count(*) FROM grants WHERE payment_state = 'awaiting_payment'
            AND payment_due_at <= now()) AS holds,
        (SELECT count(*) FROM gifts WHERE status = 'offered' AND expires_at <= now()) AS gifts,
        (SELECT count(*) FROM content_uploads WHERE status = 'receiving'
            AND expires_at <= now()) AS uploads,
        (SELECT count(*) FROM grants WHERE payment_state = 'refund_due') AS refunds,
        (SELECT count(*) FROM grants WHERE payment_state = 'refunding') AS refunding
    """
)


def due_now(engine: Engine) -> dict[str, int]:
    """Rows each sweep would take now, and the refunds on their way (``refunding``)."""
    with engine.connect() as conn:
        row = conn.execute(_DUE).mappings().one()
    return {name: int(count) for name, count in row.items()}


# ---- the service: loop, heartbeat ---------------------------------------------------------


def heartbeat_path(settings: Settings) -> Path:
    return settings.state_dir / "run" / "heartbeats" / "sweeper.json"


def write_heartbeat(path: Path, failing: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "at": time.time(), "failing": failing}))
    tmp.replace(path)


def sweeper_problem(settings: Settings) -> str | None:
    """None when the sweeper's loop went round within ``MAX_AGE_S`` with no sweep failing."""
    try:
        beat = json.loads(heartbeat_path(settings).read_text())
    except (OSError, ValueError):
        return "the sweeper has not completed its first round yet"
    age = time.time() - float(beat["at"])
    if age > MAX_AGE_S:
        return f"no sweeper round for {age:.0f}s"
    failing: dict[str, str] = beat.get("failing") or {}
    if failing:
        return "; ".join(f"sweep {name} failing: {error}" for name, error in failing.items())
    return None


def serve(
    engine: Engine,
    settings: Settings,
    sweeps: Iterable[Sweep],
    stopping: threading.Event,
    heartbeat: Path | None,
) -> None:
    """Run every sweep on its own interval until ``stopping`` is set. A failing pass (the
    database down, say) is logged, counted and tried again one interval later."""
    chosen = {s.name: s for s in sweeps}
    schedule = Schedule({name: s.interval(settings) for name, s in chosen.items()})
    for name in chosen:  # every series exists from the start, at 0
        for counter in (ROWS, PASSES, ERRORS):
            counter.labels(name.value)
    failing: dict[str, str] = {}
    while not stopping.is_set():
        for name in schedule.due(time.monotonic()):
            if stopping.is_set():
                break
            try:
                run_pass(engine, settings, chosen[name], stop=stopping.is_set)
                failing.pop(name.value, None)
            except Exception as exc:
                ERRORS.labels(name.value).inc()
                failing[name.value] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                log.exception("sweep %s failed", name.value, extra={"sweep": name.value})
            schedule.ran(name, time.monotonic())
        if heartbeat is not None:
            write_heartbeat(heartbeat, failing)
        stopping.wait(schedule.wait_s(time.monotonic()))
