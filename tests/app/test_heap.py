"""The service keeps the garbage collector off the heap it built while starting."""

import gc

from app.settings import Settings
from tests.app.conftest import running_api


async def test_start_up_freezes_the_heap_built_so_far(api_settings: Settings) -> None:
    gc.unfreeze()
    try:
        async with running_api(api_settings) as client:
            frozen = gc.get_freeze_count()
            assert (await client.get("/healthz")).status_code == 200
        # Routes, schemas, mappers and modules: far more than a few stray objects.
        assert frozen > 10_000
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual
