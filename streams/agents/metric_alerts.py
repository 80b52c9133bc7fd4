"""The metric alerts agent: metrics.samples.v1 -> alert states in PostgreSQL -> Alertmanager.

Runs :mod:`streams.pipeline`: invalid messages go to ``metrics.samples.dlq.v1``; valid ones
are judged in one transaction by :func:`core.metrics.alerts.apply_samples` (idempotent per
``(metric, minute)``: a replayed batch changes nothing), which then posts the outbox to
Alertmanager. While Alertmanager is down the post raises an ``OSError`` and the pipeline
retries the batch with backoff; nothing is acked before Alertmanager took the alerts.
"""

from __future__ import annotations

from faust import StreamT

from core.metrics.alerts import AlertBatchOutcome, apply_samples
from core.metrics.contracts import MetricSampleV1, parse_metric_sample
from core.platform.db import engine_for
from core.platform.messages import Consumed
from core.platform.topics import METRIC_SAMPLES_DLQ
from streams import pipeline
from streams.app import app, metric_samples_topic, send_and_wait, settings

engine = engine_for(settings.db_url, pool_size=4)


def write(valid: list[Consumed[MetricSampleV1]]) -> AlertBatchOutcome:
    return apply_samples(engine, settings, [c.value for c in valid])


def outcome(result: AlertBatchOutcome) -> pipeline.Outcome:
    return pipeline.Outcome(
        summary=(
            f"{result.judged} judged, {result.duplicates} duplicates, {result.fired} fired, "
            f"{result.resolved} resolved, {result.posted} alerts posted to Alertmanager"
        )
    )


METRIC_ALERTS = pipeline.Pipeline(
    name="metric_alerts",
    parse=parse_metric_sample,
    write=lambda valid: write(valid),  # looked up per batch, so tests can stand in
    outcome=outcome,
    dead_letter_topic=METRIC_SAMPLES_DLQ,
)
_send_all = send_and_wait


@app.agent(metric_samples_topic)
async def judge_metric_samples(stream: StreamT) -> None:
    await pipeline.run(
        stream,
        METRIC_ALERTS,
        batch_size=settings.metrics_alert_batch_size,
        within_s=settings.metrics_alert_batch_within_s,
        send=lambda: _send_all,
    )
