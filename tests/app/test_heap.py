"""The service tunes the garbage collector once started: the heap built so far is frozen,
the young generation collected less often."""

import gc

from app.heap import YOUNG_GENERATION_THRESHOLD
from app.settings import Settings
from tests.app.conftest import running_api


async def test_start_up_freezes_the_heap_built_so_far(api_settings: Settings) -> None:
    gc.unfreeze()
    threshold = gc.get_threshold()
    gc.set_threshold(700, *threshold[1:])
    try:
        async with running_api(api_settings) as client:
            frozen = gc.get_freeze_count()
            young = gc.get_threshold()[0]
            assert (await client.get("/healthz")).status_code == 200
        # Routes, schemas, mappers and modules: far more than a few stray objects.
        assert frozen > 10_000
        assert young == YOUNG_GENERATION_THRESHOLD
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual
        gc.set_threshold(*threshold)
