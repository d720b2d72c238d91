"""``AsyncEnclaveClient`` against the real service: the same flows, awaited."""

import asyncio
import uuid

import pytest
from enclave_client import Job, JobState, NotFoundError

from tests.app.pipeline_doubles import png_bytes


async def test_submit_wait_download_with_an_async_progress_callback(service, images, tmp_path):
    source, target = images
    seen: list[Job] = []

    async def record(job: Job) -> None:
        await asyncio.sleep(0)
        seen.append(job)

    async with service.async_client() as client:
        job = await client.submit(source, target)
        done = await client.wait(job, timeout=60, poll_interval=0.05, on_progress=record)
        saved = await client.download(done, tmp_path / "out.png")
        again = await client.get(job.id)
    assert done.state is JobState.SUCCEEDED
    assert seen[-1] == done and seen[0].id == job.id
    assert saved.read_bytes() == target.read_bytes()
    assert again == done


async def test_large_inputs_go_through_uploads(service, tmp_path):
    source, target = tmp_path / "a.png", tmp_path / "b.png"
    source.write_bytes(png_bytes(11, size=64))
    target.write_bytes(png_bytes(12, size=64))
    mark = service.audit_mark()
    async with service.async_client("bob", inline_upload_limit=100) as client:
        job = await client.submit([source, source], target)
        done = await client.wait(job, timeout=60, poll_interval=0.05)
        saved = await client.download(done, tmp_path / "out.png")
    assert saved.read_bytes() == target.read_bytes()
    # the service takes each upload once: a file given twice is sent twice
    assert service.routes("bob", since=mark).count(("PUT", "/uploads/{token}", 204)) == 3


async def test_pages_idempotency_and_typed_errors(service, images):
    async with service.async_client("bob") as client:
        first = await client.submit(*images, idempotency_key="async-key")
        again = await client.submit(*images, idempotency_key="async-key")
        ids = [job.id async for job in client.iter_jobs(page_size=1)]
        with pytest.raises(NotFoundError):
            await client.cancel(uuid.uuid4())
        await client.delete(first)
        with pytest.raises(NotFoundError):
            await client.get(first)
    assert again.id == first.id
    assert first.id in ids and len(ids) == len(set(ids))
