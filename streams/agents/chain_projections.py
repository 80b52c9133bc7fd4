"""The chain projections agent: chain.logs.v1 -> PostgreSQL balances and NFT ownership.

Runs :mod:`streams.pipeline`: invalid messages go to ``chain.logs.dlq.v1`` with the reason
and the original bytes; each valid batch is applied in ONE transaction by
:func:`core.chain.projections.apply`, idempotent per ``(chain_id, block_hash, log_index)``,
then acked. A crash between commit and ack replays the batch, which changes nothing.
Registered on the scoring role's app (``streams/__main__.py``): its worker processes split
the topic's partitions, and one contract's logs stay in one partition, in order.
"""

from __future__ import annotations

from faust import StreamT

from core.chain.contracts import ChainLog, parse_chain_log
from core.chain.projections import Deltas, apply
from core.platform.db import engine_for
from core.platform.messages import Consumed
from core.platform.topics import CHAIN_LOGS, CHAIN_LOGS_DLQ
from streams import pipeline
from streams.app import app, raw_topic, send_and_wait, settings

engine = engine_for(settings.db_url)
chain_logs_topic = raw_topic(CHAIN_LOGS)


def write(valid: list[Consumed[ChainLog]]) -> Deltas:
    return apply(engine, [c.value for c in valid])


PROJECTIONS = pipeline.Pipeline(
    name="chain_projections",
    parse=parse_chain_log,
    write=lambda valid: write(valid),  # looked up per batch, so tests can stand in
    outcome=lambda d: pipeline.Outcome(f"{d.applied} applied, {d.ignored} already applied"),
    dead_letter_topic=CHAIN_LOGS_DLQ,
)
_send_all = send_and_wait  # a module name, so tests can stand in for the broker


@app.agent(chain_logs_topic)
async def project_chain_logs(stream: StreamT) -> None:
    await pipeline.run(
        stream,
        PROJECTIONS,
        batch_size=settings.streams_batch_size,
        within_s=settings.streams_batch_within_s,
        send=lambda: _send_all,
    )
