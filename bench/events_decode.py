"""In-process A/B of the CPU each consumer spends decoding a ``game.events.v1`` value.

The values are the Kafka values the ingest API produces for ``bench/events_e2e``'s event
mix (match results, scores, purchases, session starts). Measured in one process,
alternating the two ways round by round, as CPU time per event (``time.process_time``,
the least of the rounds: the least disturbed by other jobs on a shared machine):

* ``posted_shape``: the previous decoding, one generic model whose ``before`` validator
  tags the payload with ``type`` (pydantic then validates from Python objects), then the
  same time-window check;
* ``one_model_per_type``: :func:`core.events.contracts.parse_game_event` today, a
  discriminated union of one model per event type validated straight from the JSON bytes.

and, for the ingest API, the validation of a posted batch of 1,000 such events
(``POST /v1/events/batch``'s one pass over the body): ``api_batch_posted_shape``, a list
of ``IncomingGameEvent`` (the previous way), against ``api_batch_one_model_per_type``
(the route's ``_PostedBatch`` today), per event.

Prints the figures and the load average; writes ``bench/results/events_decode.json``.
Run: ``.venv/bin/python -m bench.events_decode [--events 20000] [--rounds 7]``
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.events_e2e import event

RESULTS = Path(__file__).resolve().parent / "results" / "events_decode.json"


def kafka_values(count: int, players: int = 10_000) -> list[bytes]:
    """The values ``POST /v1/events/batch`` produces for the e2e bench's events."""
    from api.routes.events import Stamper
    from core.events.contracts import IncomingGameEvent

    now = datetime.now(UTC)
    stamper = Stamper("bench", now)
    sent = now.isoformat()
    return [
        stamper.record(IncomingGameEvent.model_validate(event(n % players, n, sent)))[1]
        for n in range(count)
    ]


def cpu_us_per_item(decode: Callable[[bytes], Any], values: list[bytes]) -> float:
    started = time.process_time()
    for value in values:
        decode(value)
    return (time.process_time() - started) / len(values) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.events_decode", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from core.events.contracts import _GameEventReasons, corrected_time, parse_game_event
    from core.platform.clock import DEFAULT_WINDOW

    def parse_posted_shape(raw: bytes) -> Any:
        """``parse_game_event`` as it was: the generic model, then the same window check."""
        event = _GameEventReasons.model_validate_json(raw)
        received = event.received_at or datetime.now(UTC)
        problem = DEFAULT_WINDOW.problem(corrected_time(event, received), received)
        if problem:
            raise ValueError(problem)
        return event

    from pydantic import BaseModel

    from api.routes.events import _PostedBatch
    from core.events.contracts import IncomingGameEvent

    class PostedShapeBatch(BaseModel):
        events: list[IncomingGameEvent]

    values = kafka_values(args.events)
    sent = datetime.now(UTC).isoformat()
    bodies = [
        json.dumps({"events": [event(n % 10_000, start + n, sent) for n in range(1000)]}).encode()
        for start in range(0, args.events, 1000)
    ]

    def batches(model: type[BaseModel]) -> Callable[[bytes], Any]:
        return model.model_validate_json

    ways: dict[str, Callable[[bytes], Any]] = {
        "posted_shape": parse_posted_shape,
        "one_model_per_type": parse_game_event,
    }
    batch_ways = {
        "api_batch_posted_shape": batches(PostedShapeBatch),
        "api_batch_one_model_per_type": batches(_PostedBatch),
    }
    assert all(
        parse_game_event(v).model_dump() == _GameEventReasons.model_validate_json(v).model_dump()
        for v in values[:1000]
    ), "both ways must decode the same events"
    load = os.getloadavg()
    rounds: dict[str, list[float]] = {name: [] for name in [*ways, *batch_ways]}
    for _ in range(args.rounds):
        for name, decode in ways.items():
            rounds[name].append(cpu_us_per_item(decode, values))
        for name, decode in batch_ways.items():  # per event: a body holds 1,000
            rounds[name].append(cpu_us_per_item(decode, bodies) / 1000)
    result: dict[str, Any] = {
        "events": args.events,
        "rounds": args.rounds,
        "load_average_at_start": [round(x, 2) for x in load],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "cpu_us_per_event_min": {k: round(min(v), 2) for k, v in rounds.items()},
        "cpu_us_per_event_rounds": {k: [round(x, 2) for x in v] for k, v in rounds.items()},
    }
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for name, value in result["cpu_us_per_event_min"].items():
        print(f"{name:>28}: {value:6.2f} µs CPU per event (least of {args.rounds} rounds)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
