"""The alert agent's batch: judge each new sample by its metric's rule, keep the episode
states in PostgreSQL, and tell Alertmanager (an outbox, so nothing is lost when it is down).

Per batch, in one transaction: the samples not newer than their metric's ``last_minute`` are
duplicates (a replay, or a re-publish after a sampler restart) and change nothing; the
others are judged in minute order by :func:`core.metrics.rules.evaluate` against the
trailing window read from ``metric_samples``. A firing episode inserts one
``metric_alerts`` row; its resolve updates the same row. After the commit every alert whose
``notified`` differs from its state, and every firing alert (re-posted each batch so that
Alertmanager keeps it active, ``endsAt`` = now + ``metrics_alert_hold_s``), is posted to
Alertmanager; then ``notified`` is set. If the post fails the batch's write is retried
(the samples are duplicates by then, the outbox is posted again).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from core.metrics.alertmanager import ALERT_NAME, post_alerts
from core.metrics.contracts import MetricSampleV1
from core.metrics.rules import (
    AlertRule,
    AlertState,
    EpisodeState,
    Transition,
    WindowStats,
    evaluate,
)
from core.platform.config import Settings


@dataclass(frozen=True)
class AlertBatchOutcome:
    judged: int
    duplicates: int
    fired: int
    resolved: int
    posted: int


@dataclass
class _MetricState:
    last_minute: datetime | None
    episode: EpisodeState
    alert_id: int | None


_RULES = text(
    """
    SELECT id, key, fire_factor, resolve_factor, window_minutes, min_samples, pending_points
    FROM metrics WHERE id = ANY(:ids)
    """
)
_STATES = text(
    """
    SELECT metric_id, last_minute, state, points_above, alert_id FROM metric_alert_states
    WHERE metric_id = ANY(:ids) ORDER BY metric_id FOR UPDATE
    """
)
_WINDOWS = text(
    """
    SELECT s.metric_id, count(*) AS n, avg(s.value) AS mean
    FROM metric_samples s JOIN metrics m ON m.id = s.metric_id
    WHERE s.metric_id = ANY(:ids) AND s.minute < :minute
      AND s.minute >= :minute - make_interval(mins => :max_window)
      AND s.minute >= :minute - make_interval(mins => m.window_minutes)
    GROUP BY s.metric_id
    """
)
_FIRE = text(
    """
    INSERT INTO metric_alerts (metric_id, state, fired_minute, fired_value, baseline, threshold)
    VALUES (:metric_id, 'firing', :minute, :value, :baseline, :threshold) RETURNING id
    """
)
_RESOLVE = text(
    """
    UPDATE metric_alerts SET state = 'resolved', resolved_minute = :minute, resolved_value = :value
    WHERE id = :id AND state = 'firing'
    """
)
_SAVE_STATES = text(
    """
    INSERT INTO metric_alert_states (metric_id, last_minute, state, points_above, alert_id)
    SELECT s.metric_id, s.last_minute, s.state, s.points_above, s.alert_id
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS s(metric_id int, last_minute timestamptz,
        state text, points_above int, alert_id bigint)
    ON CONFLICT (metric_id) DO UPDATE SET last_minute = excluded.last_minute,
        state = excluded.state, points_above = excluded.points_above,
        alert_id = excluded.alert_id, updated_at = now()
    """
)


def _rule(row: Any) -> AlertRule:
    return AlertRule(
        fire_factor=row.fire_factor,
        resolve_factor=row.resolve_factor,
        window_minutes=row.window_minutes,
        min_samples=row.min_samples,
        pending_points=row.pending_points,
    )


def judge_batch(conn: Connection, samples: Sequence[MetricSampleV1]) -> tuple[int, int, int, int]:
    """Steps of the module docstring inside ``conn``'s transaction: (judged, duplicates,
    fired, resolved)."""
    from core.platform.db import json_rows

    ids = sorted({s.metric_id for s in samples})
    rules = {row.id: _rule(row) for row in conn.execute(_RULES, {"ids": ids})}
    states: dict[int, _MetricState] = {
        row.metric_id: _MetricState(
            row.last_minute, EpisodeState(AlertState(row.state), row.points_above), row.alert_id
        )
        for row in conn.execute(_STATES, {"ids": ids})
    }
    by_minute: dict[datetime, list[MetricSampleV1]] = defaultdict(list)
    for sample in samples:
        if sample.metric_id in rules:  # a metric deleted since: nothing to judge
            by_minute[sample.minute].append(sample)
    judged = duplicates = fired = resolved = 0
    changed: set[int] = set()
    for minute in sorted(by_minute):
        fresh = []
        for sample in by_minute[minute]:
            state = states.get(sample.metric_id)
            if state is not None and state.last_minute is not None and minute <= state.last_minute:
                duplicates += 1
            else:
                fresh.append(sample)
        if not fresh:
            continue
        fresh_ids = sorted({s.metric_id for s in fresh})
        windows = {
            row.metric_id: WindowStats(row.n, row.mean)
            for row in conn.execute(
                _WINDOWS,
                {
                    "ids": fresh_ids,
                    "minute": minute,
                    "max_window": max(rules[i].window_minutes for i in fresh_ids),
                },
            )
        }
        for sample in fresh:
            state = states.setdefault(sample.metric_id, _MetricState(None, EpisodeState(), None))
            if state.last_minute == minute:
                duplicates += 1  # the same sample twice in one batch
                continue
            verdict = evaluate(
                rules[sample.metric_id],
                state.episode,
                sample.value,
                windows.get(sample.metric_id, WindowStats(0, None)),
            )
            judged += 1
            if verdict.transition is Transition.fired:
                assert verdict.baseline is not None and verdict.threshold is not None
                state.alert_id = conn.execute(
                    _FIRE,
                    {
                        "metric_id": sample.metric_id,
                        "minute": minute,
                        "value": sample.value,
                        "baseline": verdict.baseline,
                        "threshold": verdict.threshold,
                    },
                ).scalar_one()
                fired += 1
            elif verdict.transition is Transition.resolved and state.alert_id is not None:
                conn.execute(
                    _RESOLVE, {"id": state.alert_id, "minute": minute, "value": sample.value}
                )
                state.alert_id = None
                resolved += 1
            state.episode = verdict.state
            state.last_minute = minute
            changed.add(sample.metric_id)
    if changed:
        conn.execute(
            _SAVE_STATES,
            json_rows(
                {
                    "metric_id": metric_id,
                    "last_minute": states[metric_id].last_minute,
                    "state": states[metric_id].episode.state.value,
                    "points_above": states[metric_id].episode.points_above,
                    "alert_id": states[metric_id].alert_id,
                }
                for metric_id in sorted(changed)
            ),
        )
    return judged, duplicates, fired, resolved


_OUTBOX = text(
    """
    SELECT a.id, a.state, a.fired_minute, a.fired_value, a.baseline, a.threshold,
        a.resolved_minute, a.resolved_value, m.key, m.description, m.unit, m.fire_factor
    FROM metric_alerts a JOIN metrics m ON m.id = a.metric_id
    WHERE a.notified IS DISTINCT FROM a.state OR a.state = 'firing'
    ORDER BY a.id
    """
)


def alertmanager_alert(row: Any, settings: Settings, now: datetime) -> dict[str, Any]:
    """One alert in Alertmanager's v2 shape (labels identify the episode)."""
    firing = row.state == "firing"
    ends = now + timedelta(seconds=settings.metrics_alert_hold_s) if firing else row.resolved_minute
    summary = (
        f"{row.key} at {row.fired_value:g} {row.unit}, above {row.fire_factor:g}x its last-hour "
        f"average {row.baseline:g} (line {row.threshold:g})"
    )
    if not firing:
        summary += f"; back to {row.resolved_value:g} at {row.resolved_minute.isoformat()}"
    return {
        "labels": {"alertname": ALERT_NAME, "metric": row.key, "alert_id": str(row.id)},
        "annotations": {
            "summary": summary,
            "description": row.description,
            "value": f"{row.fired_value:g}",
            "baseline": f"{row.baseline:g}",
            "threshold": f"{row.threshold:g}",
        },
        "startsAt": row.fired_minute.astimezone(UTC).isoformat(),
        "endsAt": ends.astimezone(UTC).isoformat(),
        "generatorURL": f"{settings.api_url}/metrics/dashboard?metric={row.key}",
    }


def flush_outbox(engine: Engine, settings: Settings, now: datetime | None = None) -> int:
    """Post every unnotified and every firing alert to Alertmanager; returns how many."""
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        rows = conn.execute(_OUTBOX).all()
    if not rows:
        return 0
    post_alerts(settings, [alertmanager_alert(row, settings, now) for row in rows])
    with engine.begin() as conn:
        for row in rows:
            conn.execute(
                text(
                    "UPDATE metric_alerts SET notified = :state, notified_at = :now"
                    " WHERE id = :id AND notified IS DISTINCT FROM :state"
                ),
                {"id": row.id, "state": row.state, "now": now},
            )
    return len(rows)


def apply_samples(
    engine: Engine, settings: Settings, samples: Sequence[MetricSampleV1]
) -> AlertBatchOutcome:
    """The agent's write: judge and commit, then flush the outbox to Alertmanager."""
    judged = duplicates = fired = resolved = 0
    if samples:
        with engine.begin() as conn:
            judged, duplicates, fired, resolved = judge_batch(conn, samples)
    posted = flush_outbox(engine, settings)
    return AlertBatchOutcome(judged, duplicates, fired, resolved, posted)
