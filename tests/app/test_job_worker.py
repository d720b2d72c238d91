"""run_job: claim, download, pipeline, upload, finish; failure classes and retries."""

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from app.jobs import store
from app.jobs.service import InlineFile, JobRequest, JobService
from app.jobs.states import JobState
from app.jobs.worker import RunReport, WorkerContext, run_job
from app.storage.base import Storage
from app.storage.errors import StorageUnavailableError
from app.storage.keys import job_prefix
from tests.app.pipeline_doubles import copy_target, frames_until_canceled, no_face, png_bytes


def request() -> JobRequest:
    return JobRequest(
        sources=[InlineFile("source.png", png_bytes(1))],
        target=InlineFile("target.png", png_bytes(2)),
    )


@pytest.fixture
def worker(settings, session_factory, storage, clock):
    def make(
        process_file=copy_target,
        storage_override: Storage | None = None,
        name="w1",
        scratch_dir: Path | None = None,
    ):
        return WorkerContext(
            settings=settings,
            sessions=session_factory,
            storage=storage_override or storage,
            process_file=process_file,
            worker_id=name,
            clock=clock,
            scratch_dir=scratch_dir,
        )

    return make


async def objects_under(storage: Storage, root: Path, prefix: str) -> list[str]:
    directory = root / prefix
    return sorted(p.name for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


async def test_a_job_runs_to_success_and_keeps_only_its_output(
    service: JobService, worker, storage, settings
) -> None:
    job = (await service.submit("alice", request())).job
    report = await run_job(job.id, worker())
    assert report.state is JobState.SUCCEEDED
    done = await service.get("alice", job.id)
    assert done.state is JobState.SUCCEEDED
    assert (done.progress, done.stage, done.attempts) == (1.0, "done", 1)
    assert done.output_key == f"outputs/{job.id}/result.png"
    assert set(done.timings or {}) == {"download", "process", "upload"}
    assert done.summary is not None and done.summary["faces_swapped"] == 1
    assert done.started_at is not None and done.finished_at is not None
    root = settings.storage_dir
    assert (root / done.output_key).read_bytes() == png_bytes(2)
    assert await objects_under(storage, root, job_prefix(job.id, "inputs")) == []
    assert done.inputs_purged_at is not None


async def test_rerun_after_a_dead_worker_overwrites_its_output(
    service: JobService, worker, session_factory, clock, settings
) -> None:
    job = (await service.submit("alice", request())).job
    async with session_factory.begin() as session:
        await store.claim_job(session, job.id, "dead", clock(), settings.lease_duration)
    assert (await run_job(job.id, worker())).state is None  # its lease is still live
    clock.advance(settings.lease_duration + timedelta(seconds=1))
    assert (await run_job(job.id, worker())).state is JobState.SUCCEEDED
    done = await service.get("alice", job.id)
    assert done.attempts == 2
    outputs = list((settings.storage_dir / job_prefix(job.id, "outputs")).iterdir())
    assert [path.name for path in outputs] == ["result.png"]


async def test_bad_input_fails_at_once_with_the_reason(service: JobService, worker) -> None:
    job = (await service.submit("alice", request())).job
    report = await run_job(job.id, worker(no_face))
    assert (report.state, report.retry_in_s) == (JobState.FAILED, None)
    failed = await service.get("alice", job.id)
    assert failed.error_code == "bad_input"
    assert "no face" in (failed.error_detail or "")
    assert failed.attempts == 1


class FlakyStorage:
    """Fault injector: the real storage, but the first ``failures`` downloads fail."""

    def __init__(self, storage: Storage, failures: int) -> None:
        self._storage = storage
        self.failures = failures

    async def get_file(self, key: str, path: Path) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise StorageUnavailableError("connection refused (injected)")
        await self._storage.get_file(key, path)

    def __getattr__(self, name: str):
        return getattr(self._storage, name)


async def run_until_settled(job_id: uuid.UUID, context: WorkerContext, clock) -> list[RunReport]:
    """Deliver the job again whenever the worker asks, as a dispatcher would."""
    reports = [await run_job(job_id, context)]
    while reports[-1].retry_in_s is not None:
        clock.advance(timedelta(seconds=reports[-1].retry_in_s))
        reports.append(await run_job(job_id, context))
    return reports


async def test_storage_outage_is_retried_with_backoff_then_succeeds(
    service: JobService, worker, storage, clock
) -> None:
    job = (await service.submit("alice", request())).job
    flaky = FlakyStorage(storage, failures=2)
    reports = await run_until_settled(job.id, worker(storage_override=flaky), clock)
    assert [r.state for r in reports] == [JobState.QUEUED, JobState.QUEUED, JobState.SUCCEEDED]
    assert [r.retry_in_s for r in reports] == [2.0, 4.0, None]  # exponential backoff
    assert (await service.get("alice", job.id)).attempts == 3


async def test_storage_that_stays_down_fails_the_job_cleanly(
    service: JobService, worker, storage, clock, settings
) -> None:
    job = (await service.submit("alice", request())).job
    flaky = FlakyStorage(storage, failures=1_000)
    reports = await run_until_settled(job.id, worker(storage_override=flaky), clock)
    assert len(reports) == settings.max_attempts
    failed = await service.get("alice", job.id)
    assert (failed.state, failed.error_code) == (JobState.FAILED, "storage_unavailable")
    assert f"gave up after {settings.max_attempts} attempts" in (failed.error_detail or "")
    assert "injected" in (failed.error_detail or "")


async def test_cancel_stops_a_running_job_at_the_next_frame(service: JobService, worker) -> None:
    job = (await service.submit("alice", request())).job
    running = asyncio.create_task(run_job(job.id, worker(frames_until_canceled)))
    for _ in range(200):
        current = await service.get("alice", job.id)
        if current.state is JobState.RUNNING and current.progress > 0:
            break
        await asyncio.sleep(0.02)
    await service.cancel("alice", job.id)
    report = await asyncio.wait_for(running, timeout=10)
    assert report.state is JobState.CANCELED
    canceled = await service.get("alice", job.id)
    assert canceled.state is JobState.CANCELED
    assert canceled.output_key is None
    assert canceled.progress < 1.0


async def test_job_store_outage_at_claim_time_asks_for_a_retry(settings, storage) -> None:
    from app.db import create_engine, create_session_factory

    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/unreachable")
    try:
        context = WorkerContext(settings, create_session_factory(engine), storage, copy_target)
        report = await run_job(uuid.uuid4(), context)
    finally:
        await engine.dispose()
    assert report.state is None
    assert report.retry_in_s == settings.retry_backoff.total_seconds()


async def test_a_worker_thread_keeps_its_loop_engine_and_storage_between_jobs(
    service: JobService, settings
) -> None:
    """run_job_blocking reuses one runtime per thread and settings (building them per job
    cost more than a small job), and builds a new one when the settings change."""
    from app.jobs.dispatch import run_job_blocking
    from app.jobs.worker_runtime import runtime_for

    job_ids = [(await service.submit("alice", request())).job.id for _ in range(2)]

    def in_worker_thread() -> tuple[list[JobState | None], bool, bool]:
        states = [run_job_blocking(settings, job_id, copy_target).state for job_id in job_ids]
        runtime = runtime_for(settings, copy_target)
        reused = runtime_for(settings, copy_target) is runtime
        other = runtime_for(settings.model_copy(), copy_target)
        replaced = other is not runtime
        other.close()
        return states, reused, replaced

    states, reused, replaced = await asyncio.to_thread(in_worker_thread)
    assert states == [JobState.SUCCEEDED, JobState.SUCCEEDED]
    assert reused and replaced


async def test_a_worker_reuses_its_scratch_directory_and_empties_it_after_every_job(
    service: JobService, worker, tmp_path: Path
) -> None:
    """One directory for every job (no directory made and removed per job), holding one
    job's files at a time: nothing of a job, finished or failed, stays behind."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    seen: list[tuple[Path, list[str]]] = []

    def record_then(process_file):
        def process(sources, target, output, options, **kwargs):
            seen.append((output.parent, sorted(path.name for path in output.parent.iterdir())))
            (output.parent / "leftover").mkdir()  # what a pipeline might leave
            return process_file(sources, target, output, options, **kwargs)

        return process

    succeeded = (await service.submit("alice", request())).job
    failed = (await service.submit("alice", request())).job
    reports = [
        await run_job(succeeded.id, worker(record_then(copy_target), scratch_dir=scratch)),
        await run_job(failed.id, worker(record_then(no_face), scratch_dir=scratch)),
    ]

    assert [report.state for report in reports] == [JobState.SUCCEEDED, JobState.FAILED]
    assert seen == [(scratch, ["source-0.png", "target.png"])] * 2
    assert list(scratch.iterdir()) == []


async def test_a_worker_runtime_removes_its_scratch_directory_when_closed(settings) -> None:
    from app.jobs.worker_runtime import WorkerRuntime

    def open_and_close() -> tuple[bool, int, bool]:  # a runtime runs its own loop: a thread
        runtime = WorkerRuntime(settings, copy_target)
        scratch = runtime.scratch_dir
        made, mode = scratch.is_dir(), scratch.stat().st_mode
        runtime.close()
        return made, mode, scratch.exists()

    made, mode, still_there = await asyncio.to_thread(open_and_close)
    assert made and mode & 0o077 == 0  # private to the worker's user
    assert not still_there
