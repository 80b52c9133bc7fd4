"""Every place where Faust's defaults are changed for speed, each with its reason.

Measured per event on the scoring path (``bench/events_e2e.py``, docs/streaming.md):

* :class:`EagerDeliveryConsumer`: Faust hands every fetched message to the streams with
  ``await consumer.wait_first(deliver(message), suspend_flow.wait())``, which creates four
  tasks per message so that a delivery blocked on a full stream buffer can be abandoned
  when a rebalance suspends the flow. Most deliveries never block. This consumer first runs
  the delivery synchronously up to its first suspension, like Python 3.12's eager tasks:
  when it finishes there, no task is created at all; when it blocks, the rest of it races
  against the flow suspension exactly as in Faust. (A third less CPU per message.)
* :class:`QuietMonitor`: no per-message statistics for web views this worker does not serve.
* :class:`RawBytesSchema`: agents get the bytes Kafka delivered and validate them with the
  pydantic contracts of ``core`` (dead-lettering what fails); Faust's codec registry and
  ``app.create_event`` lookups are skipped.
* :func:`speed_options`: a stream buffer that holds two batches, and a short producer linger
  that packs a batch's reward commands and dead letters into few requests.

``install()`` must run before a Faust app is built (``streams.app`` calls it on import).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import faust
import faust.transport.drivers.aiokafka as faust_aiokafka
from faust.sensors import Monitor
from faust.types import TP, AppT, EventT, Message, StreamT
from mode.services import WaitResults


async def finish(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Any:
    """Drive ``coro`` on from a suspension on ``waiting_on``, as an asyncio Task would."""
    while True:
        resume, value = coro.send, None
        if waiting_on is None:  # a bare yield (asyncio.sleep(0))
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError as exc:
                resume, value = coro.throw, exc
        else:
            waiting_on._asyncio_future_blocking = False  # what a Task does before waiting
            try:
                await waiting_on
            except asyncio.CancelledError as exc:
                if not waiting_on.cancelled():  # this driver was cancelled: pass it on
                    resume, value = coro.throw, exc
            except Exception:
                if not waiting_on.done():
                    raise
                # the future failed: the coroutine sees its exception when resumed
        try:
            waiting_on = resume(value)
        except StopIteration as done:
            return done.value


class EagerDeliveryConsumer(faust_aiokafka.Consumer):
    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        """Faust's only call is ``(deliver(message), suspend_flow.wait())`` per message."""
        if (
            len(coros) != 2
            or timeout is not None
            or not all(asyncio.iscoroutine(c) for c in coros)
            or self.suspend_flow.is_set()
        ):
            return await super().wait_first(*coros, timeout=timeout)
        deliver, suspended = coros
        try:
            waiting_on = deliver.send(None)
        except StopIteration as done:
            suspended.close()
            return WaitResults([deliver], [done.value], False)
        except BaseException:
            suspended.close()
            raise
        return await super().wait_first(finish(deliver, waiting_on), suspended)


def install() -> None:
    """Make every Faust app of this process use :class:`EagerDeliveryConsumer`."""
    faust_aiokafka.Transport.Consumer = EagerDeliveryConsumer  # type: ignore[misc]


class QuietMonitor(Monitor):
    """Faust's Monitor without its per-message bookkeeping.

    The Monitor counts and times every message and event for Faust's web views, which this
    worker does not serve (web server off; readiness is the heartbeat file, progress is in
    the log and in PostgreSQL). Those four hooks ran for every message; the rest of the
    Monitor (commits, rebalances, sends) is kept."""

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        return None

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT, event: EventT
    ) -> dict | None:
        return None

    def on_stream_event_out(
        self, tp: TP, offset: int, stream: StreamT, event: EventT, state: dict | None = None
    ) -> None:
        return None

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        return None


class RawBytesSchema(faust.Schema):
    """Keys and values stay the bytes Kafka delivered: the agents validate them with the
    pydantic contracts of ``core`` (and dead-letter what fails), so Faust's codec registry
    has nothing to do. Skipping it (and the settings lookup of ``app.create_event``) saves a
    chain of calls per message."""

    def __init__(self) -> None:
        super().__init__(
            key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    def compile(self, app: AppT, **_ignored: Any) -> Callable[..., Awaitable[EventT]]:
        event_class = app.conf.Event

        async def decode(message: Message, *, propagate: bool = False) -> EventT:
            return event_class(app, message.key, message.value, message.headers, message)

        return decode


def speed_options(batch_size: int) -> dict[str, Any]:
    """The ``faust.App`` options set for speed (the others are set for behaviour)."""
    return {
        # Two batches buffered: the agent validates batch n+1 while batch n is written.
        "stream_buffer_maxsize": max(4096, 2 * batch_size),
        # Reward commands and dead letters of a batch go out in a few produce requests.
        "producer_linger": 0.005,
        # A batch's records are published as whole per-partition batches (streams/app.py
        # send_and_wait): as large as the API's (api/kafka.py), not Faust's 16 KB, so that
        # a batch of match results is a few appends, not one wait per 16 KB.
        "producer_max_batch_size": 512 * 1024,
        "producer_max_request_size": 2 * 1024 * 1024,
        "Monitor": QuietMonitor,
    }
