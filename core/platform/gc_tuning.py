"""Garbage-collector settings for the long-running, allocation-heavy processes (API, workers).

Every event allocates pydantic models, dicts, rows and futures; nearly all of them are freed
by reference counting. CPython's cyclic collector still runs a young-generation pass every
700 net allocations and, every so often, a full pass over every object alive, including
the tens of thousands that the imports and the app created at start-up and that live as
long as the process. Measured on a 2000-event batch (parse + PostgreSQL write, Python
side): 53-65 µs of CPU per event with the defaults, 36 µs with these settings.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 50_000


def tune_for_throughput() -> None:
    """Freeze what start-up created (collections never walk it again) and collect the young
    generation every 50,000 allocations instead of 700. Call once the app is built."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)
