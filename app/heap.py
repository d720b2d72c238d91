"""Garbage-collector settings for a long-running service process, applied once started.

After start-up a service process holds a large, long-lived heap: FastAPI routes and
pydantic schemas, SQLAlchemy mappers, the pipeline's modules. Every full collection walked
all of it again (≈ 5% of the API process's CPU under load, docs/performance.md). Freezing
moves those objects out of the collector's generations, so collections scan only what
requests and jobs allocate; frozen objects are still freed by reference counting.

Requests allocate many short-lived containers, nearly all freed by reference counting; at
CPython's default the young generation was collected every few requests (≈ 4% of the API
process's CPU, docs/performance.md, fifth session), so it is collected less often.
"""

import gc

YOUNG_GENERATION_THRESHOLD = 20_000
"""Container allocations (net of frees) between two young collections; CPython's is 700."""


def tune_garbage_collector() -> None:
    """Collect once, exempt every object alive now from later collections, and collect the
    young generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
