"""JobWriter: concurrent submissions share transactions, yet each gets its own outcome."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.errors import QueueFullError, UploadNotFoundError
from app.jobs import intake
from app.jobs.intake import JobWriter
from app.jobs.models import Job, Upload
from app.jobs.service import JobRequest, JobService
from app.jobs.states import JobState
from tests.app.pipeline_doubles import png_bytes

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def new_job(owner: str = "alice", idempotency_key: str | None = None) -> Job:
    return Job(
        id=uuid.uuid4(),
        owner=owner,
        state=JobState.QUEUED,
        options={},
        source_keys=["inputs/x/source.png"],
        target_key="inputs/x/target.png",
        progress=0.0,
        attempts=0,
        max_attempts=3,
        cancel_requested=False,
        idempotency_key=idempotency_key,
        request_hash="0" * 64,
        created_at=NOW,
        expires_at=NOW + timedelta(hours=1),
    )


async def stored_ids(session_factory) -> set[uuid.UUID]:
    async with session_factory() as session:
        return set((await session.execute(select(Job.id))).scalars())


async def test_concurrent_inserts_share_transactions(session_factory, monkeypatch) -> None:
    writer = JobWriter(session_factory, max_queued=1000)
    transactions: list[int] = []
    commit = writer._commit

    async def counting(batch):
        transactions.append(len(batch))
        await commit(batch)

    monkeypatch.setattr(writer, "_commit", counting)
    jobs = [new_job() for _ in range(40)]
    await asyncio.gather(*(writer.insert(job) for job in jobs))
    assert await stored_ids(session_factory) == {job.id for job in jobs}
    assert sum(transactions) == 40
    assert len(transactions) < 10, transactions


async def test_the_queue_bound_is_exact_within_a_batch(session_factory) -> None:
    writer = JobWriter(session_factory, max_queued=5)
    jobs = [new_job() for _ in range(8)]
    results = await asyncio.gather(*(writer.insert(job) for job in jobs), return_exceptions=True)
    accepted = [job.id for job, result in zip(jobs, results, strict=True) if result is None]
    refused = [result for result in results if isinstance(result, QueueFullError)]
    assert len(accepted) == 5 and len(refused) == 3
    assert await stored_ids(session_factory) == set(accepted)
    # Right after, a submission is refused without touching the store.
    with pytest.raises(QueueFullError):
        writer.refuse_if_recently_full()


async def test_the_full_queue_memory_expires(session_factory, monkeypatch) -> None:
    writer = JobWriter(session_factory, max_queued=0)
    with pytest.raises(QueueFullError):
        await writer.insert(new_job())
    clock = [intake.time.monotonic() + intake.FULL_QUEUE_MEMORY_S + 1]
    monkeypatch.setattr(intake.time, "monotonic", lambda: clock[0])
    writer.refuse_if_recently_full()  # no longer remembered: the store decides again


async def test_one_jobs_conflict_does_not_fail_the_others_in_its_batch(session_factory) -> None:
    writer = JobWriter(session_factory, max_queued=1000)
    await writer.insert(new_job(idempotency_key="k1"))
    clash = new_job(idempotency_key="k1")  # same owner and key: the unique index refuses it
    missing_upload = uuid.uuid4()
    others = [new_job() for _ in range(5)]
    results = await asyncio.gather(
        writer.insert(others[0]),
        writer.insert(clash),
        writer.insert(others[1]),
        writer.insert(new_job(), [missing_upload]),
        *(writer.insert(job) for job in others[2:]),
        return_exceptions=True,
    )
    assert isinstance(results[1], IntegrityError)
    assert isinstance(results[3], UploadNotFoundError)
    assert [r for i, r in enumerate(results) if i not in (1, 3)] == [None] * 5
    stored = await stored_ids(session_factory)
    assert {job.id for job in others} <= stored
    assert clash.id not in stored
    assert len(stored) == 6


async def test_an_upload_is_claimed_by_exactly_one_of_two_racing_jobs(session_factory) -> None:
    upload_id = uuid.uuid4()
    async with session_factory.begin() as session:
        session.add(
            Upload(
                id=upload_id,
                owner="alice",
                key=f"inputs/{upload_id}/face.png",
                content_type="image/png",
                max_bytes=100,
                created_at=NOW,
            )
        )
    writer = JobWriter(session_factory, max_queued=1000)
    first, second = new_job(), new_job()
    results = await asyncio.gather(
        writer.insert(first, [upload_id]),
        writer.insert(second, [upload_id]),
        return_exceptions=True,
    )
    assert results[0] is None and isinstance(results[1], UploadNotFoundError)
    async with session_factory() as session:
        owner_job = (
            await session.execute(select(Upload.job_id).where(Upload.id == upload_id))
        ).scalar_one()
        count = (await session.execute(select(func.count()).select_from(Job))).scalar_one()
    assert (owner_job, count) == (first.id, 1)


async def test_a_cancelled_submission_after_the_insert_keeps_its_job_and_inputs(
    service: JobService, settings, monkeypatch
) -> None:
    """Cancelled while its transaction may be under way: the job is not half-deleted."""
    writer_insert = service._writer.insert

    async def insert_then_cancel(job, uploads=()):
        await writer_insert(job, uploads)
        raise asyncio.CancelledError

    monkeypatch.setattr(service._writer, "insert", insert_then_cancel)
    from app.jobs.service import InlineFile

    request = JobRequest(
        sources=[InlineFile("source.png", png_bytes(1))],
        target=InlineFile("target.png", png_bytes(2)),
    )
    with pytest.raises(asyncio.CancelledError):
        await service.submit("alice", request)
    (job_id,) = await stored_ids(service.sessions)
    assert job_id in service._undispatched  # the sweeper dispatches it
    assert list((settings.storage_dir / "inputs" / str(job_id)).iterdir())
