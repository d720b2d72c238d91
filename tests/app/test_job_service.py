"""JobService: idempotency, backpressure, uploads, ownership, cancel, delete, TTL, retention."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import event

from app.errors import (
    IdempotencyConflictError,
    JobConflictError,
    JobNotFoundError,
    QueueFullError,
    ResultGoneError,
    UploadNotFoundError,
)
from app.jobs.options import JobOptions
from app.jobs.service import InlineFile, JobRequest, JobService
from app.jobs.states import JobState
from app.jobs.worker import WorkerContext, run_job
from app.storage.keys import job_prefix
from tests.app.pipeline_doubles import copy_target, png_bytes


def request(seed: int = 2, **options: object) -> JobRequest:
    return JobRequest(
        sources=[InlineFile("source.png", png_bytes(1))],
        target=InlineFile("target.png", png_bytes(seed)),
        options=JobOptions(**options),
    )


async def finish(service: JobService, job_id, clock) -> None:
    context = WorkerContext(
        settings=service.settings,
        sessions=service.sessions,
        storage=service.storage,
        process_file=copy_target,
        clock=clock,
    )
    assert (await run_job(job_id, context)).state is JobState.SUCCEEDED


def stored(settings, prefix: str) -> list[str]:
    directory = settings.storage_dir / prefix
    return [p.name for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


async def test_submission_is_queued_and_dispatched(service: JobService, dispatcher) -> None:
    submission = await service.submit("alice", request())
    assert submission.created
    assert submission.job.state is JobState.QUEUED
    assert dispatcher.dispatched == [(submission.job.id, 0.0)]


async def test_same_idempotency_key_and_body_gives_the_same_job(service: JobService) -> None:
    first = await service.submit("alice", request(), idempotency_key="k1")
    again = await service.submit("alice", request(), idempotency_key="k1")
    assert (again.job.id, again.created) == (first.job.id, False)
    with pytest.raises(IdempotencyConflictError):
        await service.submit("alice", request(seed=3), idempotency_key="k1")
    with pytest.raises(IdempotencyConflictError):
        await service.submit("alice", request(face_selector_mode="one"), idempotency_key="k1")
    other_owner = await service.submit("bob", request(), idempotency_key="k1")
    assert other_owner.created and other_owner.job.id != first.job.id


async def test_racing_requests_with_one_key_create_one_job(service: JobService) -> None:
    submissions = await asyncio.gather(
        *(service.submit("alice", request(), idempotency_key="race") for _ in range(6))
    )
    assert len({s.job.id for s in submissions}) == 1
    assert sum(s.created for s in submissions) == 1


async def test_a_full_queue_refuses_with_retry_after(service: JobService, settings) -> None:
    small = JobService(
        settings.model_copy(update={"max_queued_jobs": 2}),
        service.sessions,
        service.storage,
        service.dispatcher,
    )
    await small.submit("alice", request())
    await small.submit("alice", request())
    with pytest.raises(QueueFullError) as refused:
        await small.submit("alice", request())
    assert refused.value.retry_after_s > 0


async def test_uploads_are_single_use_and_private(service: JobService, storage) -> None:
    upload, presigned = await service.create_upload("alice", "face.png", "image/png", 1000)
    assert presigned.method == "PUT"
    assert upload.key.startswith(f"inputs/{upload.id}/")
    await storage.put_bytes(upload.key, png_bytes(5))
    with pytest.raises(UploadNotFoundError):  # someone else's upload
        await service.submit("bob", JobRequest(sources=[upload.id], target=upload.id))
    source = InlineFile("s.png", png_bytes(1))
    job = (await service.submit("alice", JobRequest(sources=[source], target=upload.id))).job
    assert job.target_key == upload.key
    with pytest.raises(UploadNotFoundError):  # already used
        await service.submit("alice", JobRequest(sources=[source], target=upload.id))


async def test_an_upload_never_sent_is_refused(service: JobService) -> None:
    upload, _ = await service.create_upload("alice", "face.png", "image/png", 1000)
    with pytest.raises(UploadNotFoundError):
        await service.submit(
            "alice", JobRequest(sources=[InlineFile("s.png", png_bytes(1))], target=upload.id)
        )


async def test_other_callers_cannot_see_or_touch_a_job(service: JobService) -> None:
    job = (await service.submit("alice", request())).job
    for action in (service.get, service.cancel, service.delete, service.result):
        with pytest.raises(JobNotFoundError):
            await action("mallory", job.id)
    assert (await service.list_jobs("mallory", state=None, cursor=None, limit=10)).jobs == []


async def test_cancel_a_queued_job_ends_it_and_purges_inputs(service: JobService) -> None:
    job = (await service.submit("alice", request())).job
    canceled = await service.cancel("alice", job.id)
    assert canceled.state is JobState.CANCELED
    assert stored(service.settings, job_prefix(job.id, "inputs")) == []
    assert (await service.cancel("alice", job.id)).state is JobState.CANCELED  # idempotent


async def test_cancel_a_finished_job_is_a_conflict(service: JobService, clock) -> None:
    job = (await service.submit("alice", request())).job
    await finish(service, job.id, clock)
    with pytest.raises(JobConflictError):
        await service.cancel("alice", job.id)


async def test_delete_removes_every_object_and_the_job(service: JobService, clock) -> None:
    job = (await service.submit("alice", request())).job
    await finish(service, job.id, clock)
    assert stored(service.settings, job_prefix(job.id, "outputs")) == ["result.png"]
    await service.delete("alice", job.id)
    assert stored(service.settings, job_prefix(job.id, "outputs")) == []
    assert stored(service.settings, job_prefix(job.id, "inputs")) == []
    with pytest.raises(JobNotFoundError):
        await service.get("alice", job.id)


async def test_unstarted_jobs_expire_after_their_ttl(service: JobService, clock) -> None:
    job = (await service.submit("alice", request())).job
    clock.advance(service.settings.job_ttl + timedelta(seconds=1))
    report = await service.sweep()
    assert report.expired == [job.id]
    expired = await service.get("alice", job.id)
    assert (expired.state, expired.error_code) == (JobState.FAILED, "expired")
    assert stored(service.settings, job_prefix(job.id, "inputs")) == []


async def test_outputs_are_purged_after_retention(service: JobService, clock) -> None:
    job = (await service.submit("alice", request())).job
    await finish(service, job.id, clock)
    _, presigned = await service.result("alice", job.id)
    assert presigned is None  # the local backend streams
    assert (await service.sweep()).outputs_purged == []
    clock.advance(service.settings.output_retention + timedelta(seconds=1))
    assert (await service.sweep()).outputs_purged == [job.id]
    assert stored(service.settings, job_prefix(job.id, "outputs")) == []
    with pytest.raises(ResultGoneError):
        await service.result("alice", job.id)


async def test_start_up_redispatches_queued_jobs_and_expired_leases(
    service: JobService, dispatcher, clock
) -> None:
    from app.jobs import store

    queued = (await service.submit("alice", request())).job
    orphan = (await service.submit("alice", request())).job
    async with service.sessions.begin() as session:
        await store.claim_job(session, orphan.id, "dead", clock(), timedelta(seconds=5))
    clock.advance(timedelta(seconds=6))
    dispatcher.dispatched.clear()
    assert set(await service.redispatch_pending()) == {queued.id, orphan.id}
    dispatcher.dispatched.clear()
    assert (await service.sweep()).redispatched == [orphan.id]  # queued ones are in hand


async def test_a_sweep_reads_a_backlog_without_a_query_per_job(service: JobService, engine) -> None:
    for _ in range(30):
        await service.submit("alice", request())
    statements: list[str] = []

    def record(connection, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        report = await service.sweep()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert report.redispatched == []  # all 30 are queued and were dispatched when submitted
    assert len(statements) < 10, statements


async def test_uploads_never_used_are_purged(service: JobService, storage, clock) -> None:
    unused, _ = await service.create_upload("alice", "a.png", "image/png", 10_000)
    used, _ = await service.create_upload("alice", "b.png", "image/png", 10_000)
    await storage.put_bytes(unused.key, png_bytes(1))
    await storage.put_bytes(used.key, png_bytes(2))
    source = InlineFile("s.png", png_bytes(3))
    await service.submit("alice", JobRequest(sources=[source], target=used.id))
    assert (await service.sweep()).uploads_purged == []
    clock.advance(service.settings.upload_url_expiry + service.settings.job_ttl)
    clock.advance(timedelta(seconds=1))
    assert (await service.sweep()).uploads_purged == [unused.id]
    assert not await storage.exists(unused.key)
