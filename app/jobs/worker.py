"""``run_job``: claim one job, run the pipeline on it, and record how it ended.

The worker downloads the inputs into a private temporary directory, runs the pipeline in
a thread (so the event loop keeps renewing the lease and reading the cancel flag), uploads
the output under ``outputs/<job-id>/`` (a re-run overwrites it) and finishes the job with
an update conditional on still holding the lease.

Failures are classified: bad input fails the job at once; storage or database outages
put it back in the queue with exponential backoff until ``max_attempts``, then fail it;
cancellation (the owner's flag, checked between frames) cancels it. A worker that lost
its lease stops and writes nothing: the job belongs to whoever took it over.
"""

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.jobs import store
from app.jobs.cleanup import purge_inputs
from app.jobs.models import Job
from app.jobs.options import JobOptions
from app.jobs.pipeline_entry import ProcessFile, pipeline_process_file
from app.jobs.states import ErrorCode, JobState
from app.jobs.store import ClaimOutcome
from app.settings import Settings
from app.storage.base import Storage
from app.storage.errors import ObjectNotFoundError, StorageUnavailableError
from app.storage.keys import job_key
from pipeline.errors import InputError, PipelineError, ProcessingCanceled
from pipeline.options import IMAGE_SUFFIXES, VIDEO_SUFFIXES, RunSummary

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    StorageUnavailableError,
    OperationalError,
    DBAPIError,
    ConnectionError,
    TimeoutError,
)


def new_worker_id() -> str:
    """A lease owner name: host and process, plus randomness so restarts never collide."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WorkerContext:
    """Everything ``run_job`` needs, injected."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    storage: Storage
    process_file: ProcessFile = pipeline_process_file
    worker_id: str = field(default_factory=new_worker_id)
    clock: Callable[[], datetime] = utcnow
    scratch_dir: Path | None = None
    """A private directory for one job's files at a time, emptied after each job (a
    worker runtime keeps one); ``None``: a temporary directory per job."""


@dataclass(frozen=True)
class RunReport:
    """How one delivery of a job went; ``retry_in_s`` asks the dispatcher to come back."""

    job_id: uuid.UUID
    state: JobState | None
    retry_in_s: float | None = None
    timings: dict[str, float] = field(default_factory=dict)


class _LeaseLostError(Exception):
    """Another worker took the job over; stop without writing anything."""


async def run_job(job_id: uuid.UUID, context: WorkerContext) -> RunReport:
    """Claim ``job_id`` and run it to a terminal state (or back to the queue for a retry)."""
    settings = context.settings
    try:
        async with context.sessions.begin() as session:
            claim = await store.claim_job(
                session, job_id, context.worker_id, context.clock(), settings.lease_duration
            )
    except TRANSIENT_ERRORS as exc:
        logger.warning("job %s: cannot claim (%s); will retry", job_id, type(exc).__name__)
        return RunReport(job_id, None, retry_in_s=settings.retry_backoff.total_seconds())
    if claim.outcome is ClaimOutcome.EXPIRED:
        await purge_inputs(context.sessions, context.storage, job_id, context.clock)
        await _notify(context, job_id)
        return RunReport(job_id, JobState.FAILED)
    if claim.outcome is not ClaimOutcome.CLAIMED:
        retry_in = None
        if claim.retry_at is not None:
            retry_in = max(0.0, (claim.retry_at - context.clock()).total_seconds()) + 0.5
        return RunReport(job_id, None, retry_in_s=retry_in)

    job = claim.job
    if job is None:  # read in the claim's own transaction; this is only a fallback
        async with context.sessions() as session:
            job = await store.get_job(session, job_id)
    return await _Execution(context, job).run()


class _Execution:
    """One claimed attempt at one job."""

    def __init__(self, context: WorkerContext, job: Job) -> None:
        self.context = context
        self.job = job
        self.progress = 0.0
        self.stage = "starting"
        self.cancel = threading.Event()
        self.lease_lost = False
        self.timings: dict[str, float] = {}

    async def run(self) -> RunReport:
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            with _workspace(self.context.scratch_dir) as workdir:
                summary, output_key = await self._attempt(workdir)
            return await self._finish_succeeded(summary, output_key)
        except _LeaseLostError:
            logger.warning("job %s: lease lost; another worker owns it now", self.job.id)
            return RunReport(self.job.id, None, timings=self.timings)
        except ProcessingCanceled:
            return await self._finish(JobState.CANCELED, {"stage": "canceled"})
        except (InputError, ObjectNotFoundError) as exc:
            return await self._finish(
                JobState.FAILED, {"error_code": ErrorCode.BAD_INPUT, "error_detail": str(exc)}
            )
        except TRANSIENT_ERRORS as exc:
            return await self._retry_or_fail(exc)
        except PipelineError as exc:
            return await self._finish(
                JobState.FAILED,
                {"error_code": ErrorCode.PROCESSING_FAILED, "error_detail": str(exc)},
            )
        except Exception:
            logger.exception("job %s: unexpected error", self.job.id)
            return await self._finish(
                JobState.FAILED,
                {
                    "error_code": ErrorCode.PROCESSING_FAILED,
                    "error_detail": "internal error while processing; see the worker log",
                },
            )
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _attempt(self, workdir: Path) -> tuple[RunSummary, str]:
        storage, job = self.context.storage, self.job
        with self._timed("download"):
            self.stage = "download"
            sources = []
            for index, key in enumerate(job.source_keys):
                path = workdir / f"source-{index}{_suffix(key)}"
                await storage.get_file(key, path)
                sources.append(path)
            target = workdir / f"target{_suffix(job.target_key)}"
            await storage.get_file(job.target_key, target)
        output = workdir / f"result{_output_suffix(target)}"
        options = JobOptions.model_validate(job.options).to_run_options(
            model_dir=self.context.settings.model_dir,
            execution_providers=self.context.settings.execution_providers,
            allow_non_commercial_models=self.context.settings.allow_non_commercial_models,
            limits=self.context.settings.media_limits,
        )
        self._raise_if_stopped()
        with self._timed("process"):
            summary = await asyncio.to_thread(
                self.context.process_file,
                sources,
                target,
                output,
                options,
                on_progress=self._on_progress,
                should_cancel=self.cancel.is_set,
            )
        self._raise_if_stopped()
        output_key = job_key(job.id, "outputs", output.name)
        with self._timed("upload"):
            self.stage = "upload"
            await storage.put_file(output_key, output)
        return summary, output_key

    def _on_progress(self, fraction: float, stage: str) -> None:
        # Called from the pipeline's thread; the heartbeat task publishes it.
        self.progress = min(max(fraction, 0.0), 1.0)
        self.stage = stage[:32]

    def _raise_if_stopped(self) -> None:
        if self.lease_lost:
            raise _LeaseLostError
        if self.cancel.is_set():
            raise ProcessingCanceled("canceled by its owner")

    async def _heartbeat(self) -> None:
        settings = self.context.settings
        while True:
            await asyncio.sleep(settings.heartbeat_interval.total_seconds())
            try:
                async with self.context.sessions.begin() as session:
                    beat = await store.heartbeat(
                        session,
                        self.job.id,
                        self.context.worker_id,
                        self.context.clock(),
                        settings.lease_duration,
                        progress=self.progress,
                        stage=self.stage,
                    )
            except TRANSIENT_ERRORS as exc:
                # The lease has slack for a missed beat or two; a longer outage means
                # another worker may take over, which the next beat will notice.
                logger.warning("job %s: heartbeat failed (%s)", self.job.id, type(exc).__name__)
                continue
            if beat is None:
                self.lease_lost = True
                self.cancel.set()
                return
            if beat.cancel_requested:
                self.cancel.set()

    async def _finish_succeeded(self, summary: RunSummary, output_key: str) -> RunReport:
        return await self._finish(
            JobState.SUCCEEDED,
            {
                "output_key": output_key,
                "progress": 1.0,
                "stage": "done",
                "summary": _summary_json(summary),
                "error_code": None,
                "error_detail": None,
            },
        )

    async def _finish(self, state: JobState, values: dict[str, Any]) -> RunReport:
        values = {**values, "timings": self.timings}
        async with self.context.sessions.begin() as session:
            changed = await store.transition(
                session,
                self.job.id,
                state,
                self.context.clock(),
                lease_owner=self.context.worker_id,
                values=values,
            )
        if not changed:
            logger.warning("job %s: lease lost before finishing as %s", self.job.id, state)
            return RunReport(self.job.id, None, timings=self.timings)
        await purge_inputs(
            self.context.sessions,
            self.context.storage,
            self.job.id,
            self.context.clock,
            known=self.job,
        )
        if self.job.webhook_url is not None:  # set at submission, never changed
            await _notify(self.context, self.job.id)
        return RunReport(self.job.id, state, timings=self.timings)

    async def _retry_or_fail(self, exc: Exception) -> RunReport:
        settings, job = self.context.settings, self.job
        reason = _transient_reason(exc)
        code = (
            ErrorCode.STORAGE_UNAVAILABLE
            if isinstance(exc, StorageUnavailableError)
            else ErrorCode.DATABASE_UNAVAILABLE
        )
        if job.attempts >= min(job.max_attempts, settings.max_attempts):
            return await self._finish(
                JobState.FAILED,
                {
                    "error_code": code,
                    "error_detail": f"gave up after {job.attempts} attempts: {reason}",
                },
            )
        delay = min(settings.retry_backoff * 2 ** (job.attempts - 1), settings.retry_backoff_max)
        now = self.context.clock()
        try:
            async with self.context.sessions.begin() as session:
                requeued = await store.transition(
                    session,
                    job.id,
                    JobState.QUEUED,
                    now,
                    lease_owner=self.context.worker_id,
                    values={"next_attempt_at": now + delay, "error_detail": reason},
                )
        except TRANSIENT_ERRORS:
            # The database itself is down: the lease will expire and the sweeper re-runs it.
            return RunReport(job.id, None, retry_in_s=settings.lease_duration.total_seconds())
        if not requeued:
            return RunReport(job.id, None, timings=self.timings)
        logger.info(
            "job %s: attempt %d failed (%s); retry in %s", job.id, job.attempts, reason, delay
        )
        return RunReport(
            job.id, JobState.QUEUED, retry_in_s=delay.total_seconds(), timings=self.timings
        )

    def _timed(self, stage: str) -> "_StageTimer":
        return _StageTimer(self.timings, stage)


class _StageTimer:
    def __init__(self, timings: dict[str, float], stage: str) -> None:
        self.timings, self.stage = timings, stage

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *_exc: object) -> None:
        self.timings[self.stage] = round(time.perf_counter() - self.started, 6)


async def _notify(context: WorkerContext, job_id: uuid.UUID) -> None:
    from app.jobs.notify import notify_job_ended

    async with context.sessions() as session:
        job = await store.refresh_job(session, job_id)
    if job is None:
        return
    try:
        await notify_job_ended(job, context.settings)
    except Exception:
        # The job has ended either way; a broken notification must not re-run or fail it.
        logger.exception("job %s: webhook notification failed", job_id)


@contextmanager
def _workspace(scratch_dir: Path | None) -> Iterator[Path]:
    """Where one attempt keeps its files: ``scratch_dir``, emptied afterwards, or a new
    temporary directory.

    Reusing one directory saves making and removing one per job, which on a file system
    that is slow to allocate inodes was a measurable part of a small job's cost
    (docs/performance.md, fifth session).
    """
    if scratch_dir is None:
        with tempfile.TemporaryDirectory(prefix="enclave-job-") as workdir:
            yield Path(workdir)
        return
    try:
        yield scratch_dir
    finally:
        _empty_directory(scratch_dir)


def _empty_directory(directory: Path) -> None:
    """Remove everything in ``directory`` (a job's inputs are faces: none may stay)."""
    try:
        for entry in directory.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    except OSError as exc:
        # Logged, not raised: the job's outcome is already decided; the next job's files
        # replace these names, and the runtime removes the directory when it closes.
        logger.error("cannot empty the scratch directory %s: %s", directory, exc.strerror)


def _suffix(key: str) -> str:
    suffix = Path(key).suffix.lower()
    return suffix if suffix in IMAGE_SUFFIXES + VIDEO_SUFFIXES else ""


def _output_suffix(target: Path) -> str:
    """The output format: the target's own where the pipeline can write it."""
    from pipeline.media import MediaKind, sniff_media_kind

    kind = sniff_media_kind(target)
    suffix = target.suffix.lower()
    if kind is MediaKind.IMAGE:
        return suffix if suffix in IMAGE_SUFFIXES else ".png"
    return suffix if suffix in VIDEO_SUFFIXES else ".mp4"


def _transient_reason(exc: Exception) -> str:
    if isinstance(exc, StorageUnavailableError):
        return f"storage unavailable: {exc}"
    return f"{type(exc).__name__} talking to the job store"


def _summary_json(summary: RunSummary) -> dict[str, Any]:
    return {
        "kind": summary.kind,
        "frames": summary.frames,
        "faces_found": summary.faces_found,
        "faces_swapped": summary.faces_swapped,
        "seconds": round(summary.seconds, 3),
        "providers": list(summary.providers),
        "models": list(summary.models),
    }
