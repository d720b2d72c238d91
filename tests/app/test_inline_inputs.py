"""Inline inputs of submissions arriving together: checked and written as one batch, each
submission still getting its own outcome."""

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.jobs.inline_inputs import InlineInput, InlineInputWriter
from app.storage.base import ObjectData
from app.storage.errors import StorageUnavailableError
from app.storage.keys import job_key
from app.storage.local import LocalStorage
from pipeline.errors import InputError
from pipeline.media import MediaKind
from pipeline.options import Limits
from tests.app.pipeline_doubles import png_bytes


class RecordingStorage(LocalStorage):
    """Local storage that records each ``put_many`` and can refuse keys or hold writes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, upload_secret=b"s" * 32)
        self.batches: list[list[str]] = []
        self.refused: set[str] = set()
        self.hold: asyncio.Event | None = None
        self.writing = asyncio.Event()

    async def put_many(self, objects: Sequence[ObjectData]) -> None:
        self.batches.append([item.key for item in objects])
        self.writing.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.refused & {item.key for item in objects}:
            raise StorageUnavailableError("disk gone")
        await super().put_many(objects)


@pytest.fixture
def storage(tmp_path: Path) -> RecordingStorage:
    return RecordingStorage(tmp_path / "store")


def submission(data: bytes = b"", expect: MediaKind | None = MediaKind.IMAGE):
    data = data or png_bytes(1)
    key = job_key(uuid.uuid4(), "inputs", "0-face.png")
    return [InlineInput(data, "face.png", expect)], [ObjectData(key, data, "image/png")]


async def test_submissions_arriving_together_are_written_in_one_batch(storage) -> None:
    writer = InlineInputWriter(storage, Limits())
    submissions = [submission(png_bytes(seed)) for seed in range(10)]
    await asyncio.gather(*(writer.check_and_store(*each) for each in submissions))
    assert len(storage.batches) == 1
    for _, objects in submissions:
        assert (storage.root / objects[0].key).read_bytes() == objects[0].data


async def test_a_bad_file_fails_its_own_submission_only(storage) -> None:
    writer = InlineInputWriter(storage, Limits())
    good, bad = submission(), submission(b"not an image at all")
    outcomes = await asyncio.gather(
        writer.check_and_store(*good), writer.check_and_store(*bad), return_exceptions=True
    )
    assert outcomes[0] is None
    assert isinstance(outcomes[1], InputError)
    assert (storage.root / good[1][0].key).exists()
    assert not (storage.root / bad[1][0].key).exists()


async def test_a_failed_write_is_retried_per_submission(storage) -> None:
    writer = InlineInputWriter(storage, Limits())
    first, second = submission(), submission()
    storage.refused = {second[1][0].key}
    outcomes = await asyncio.gather(
        writer.check_and_store(*first), writer.check_and_store(*second), return_exceptions=True
    )
    assert outcomes[0] is None
    assert isinstance(outcomes[1], StorageUnavailableError)
    assert (storage.root / first[1][0].key).exists()


async def test_a_cancelled_caller_waits_for_its_write_to_settle(storage) -> None:
    writer = InlineInputWriter(storage, Limits())
    storage.hold = asyncio.Event()
    inputs, objects = submission()
    caller = asyncio.create_task(writer.check_and_store(inputs, objects))
    await storage.writing.wait()
    caller.cancel()
    await asyncio.sleep(0.05)
    assert not caller.done()  # the write is still under way: the cancellation waits
    storage.hold.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert (storage.root / objects[0].key).exists()  # settled before the caller let go
