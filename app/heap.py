"""Keeping the cyclic garbage collector off what a process built while starting.

After start-up a service process holds a large, long-lived heap: FastAPI routes and
pydantic schemas, SQLAlchemy mappers, the pipeline's modules. Every full collection walked
all of it again (≈ 5% of the API process's CPU under load, docs/performance.md). Freezing
moves those objects out of the collector's generations, so collections scan only what
requests and jobs allocate; frozen objects are still freed by reference counting.
"""

import gc


def freeze_startup_heap() -> None:
    """Collect once, then exempt every object alive now from later collections."""
    gc.collect()
    gc.freeze()
