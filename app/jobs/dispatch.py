"""Getting a job id to a worker: in-process (a spawned process pool) or Celery.

Dispatch carries only the job id; the database row is the truth, so dispatching the same
id twice is harmless (the second claim finds the job busy or finished). The HTTP process
never runs inference: the in-process dispatcher hands ids to worker *processes*, like
cog's server spawns its predictor.
"""

import asyncio
import contextlib
import logging
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol

from app.heap import freeze_startup_heap
from app.jobs.pipeline_entry import ProcessFile, pipeline_process_file
from app.jobs.worker import RunReport
from app.jobs.worker_runtime import runtime_for
from app.settings import Settings

logger = logging.getLogger(__name__)

ReportListener = Callable[[RunReport], None]


class Dispatcher(Protocol):
    async def start(self) -> None: ...

    async def dispatch(self, job_id: uuid.UUID, *, delay_s: float = 0.0) -> None:
        """Have a worker look at ``job_id`` (after ``delay_s`` seconds)."""

    async def check(self) -> None:
        """Raise if jobs cannot be dispatched now (for /readyz)."""

    async def close(self) -> None: ...


def run_job_blocking(
    settings: Settings,
    job_id: uuid.UUID,
    process_file: ProcessFile = pipeline_process_file,
    worker_id: str | None = None,
) -> RunReport:
    """Run one job on this thread's worker runtime (its loop, engine and storage are kept
    for the next job)."""
    return runtime_for(settings, process_file).run(job_id, worker_id)


_pool_settings: Settings | None = None
_pool_process_file: ProcessFile = pipeline_process_file


def _init_pool_worker(settings: Settings, process_file: ProcessFile) -> None:
    """Pool initializer: the settings travel once per worker process, not once per job."""
    global _pool_settings, _pool_process_file
    _pool_settings, _pool_process_file = settings, process_file
    if settings.worker_nice:
        _lower_cpu_priority(settings.worker_nice)
    freeze_startup_heap()


def _lower_cpu_priority(increment: int) -> None:
    """Lower every thread of this process by ``increment`` nice levels.

    On Linux a nice value belongs to a thread: imports (OpenBLAS's pool, say) started
    threads before this runs, so each is lowered; threads started later inherit it.
    """
    try:
        threads = [int(entry.name) for entry in Path("/proc/self/task").iterdir()]
    except FileNotFoundError:  # no /proc: the calling thread, and those it starts
        os.nice(increment)
        return
    for thread in threads:
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            current = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, min(19, current + increment))


def _worker_ready() -> None:
    """A no-op task: submitting one per worker makes the pool start its processes."""


def _run_pooled_job(job_id: uuid.UUID) -> RunReport:
    if _pool_settings is None:
        raise RuntimeError("worker process started without its settings")
    return run_job_blocking(_pool_settings, job_id, _pool_process_file)


class InProcessDispatcher:
    """Runs jobs in a pool of spawned worker processes owned by the API process."""

    def __init__(
        self,
        settings: Settings,
        *,
        process_file: ProcessFile = pipeline_process_file,
        on_report: ReportListener | None = None,
    ) -> None:
        self._settings = settings
        self._process_file = process_file
        self._on_report = on_report
        self._pool: ProcessPoolExecutor | None = None
        self._pending: set[uuid.UUID] = set()
        self._timers: set[asyncio.TimerHandle] = set()

    async def start(self) -> None:
        self._pool = self._new_pool()
        self._warm(self._pool)

    async def dispatch(self, job_id: uuid.UUID, *, delay_s: float = 0.0) -> None:
        self._schedule(job_id, delay_s)

    @property
    def pending(self) -> int:
        """Jobs handed to the pool and not yet reported back."""
        return len(self._pending)

    def _schedule(self, job_id: uuid.UUID, delay_s: float) -> None:
        if delay_s > 0:
            handle = asyncio.get_running_loop().call_later(delay_s, self._submit, job_id)
            self._timers.add(handle)
        else:
            self._submit(job_id)

    def _submit(self, job_id: uuid.UUID) -> None:
        self._timers = {timer for timer in self._timers if not timer.cancelled()}
        if self._pool is None or job_id in self._pending:
            return  # closed, or already waiting for a worker: one delivery is enough
        self._pending.add(job_id)
        try:
            future = self._pool.submit(_run_pooled_job, job_id)
        except BrokenProcessPool:
            self._replace_broken_pool()
            future = self._pool.submit(_run_pooled_job, job_id)
        loop = asyncio.get_running_loop()
        future.add_done_callback(
            lambda done: loop.call_soon_threadsafe(self._completed, job_id, done)
        )

    def _completed(self, job_id: uuid.UUID, future: "Future[RunReport]") -> None:
        self._pending.discard(job_id)
        if future.cancelled():
            return
        error = future.exception()
        if isinstance(error, BrokenProcessPool):
            self._replace_broken_pool()
        if error is not None:
            # The worker process died or the job store was unreachable while finishing;
            # the row still says what happened, so look again once the lease can expire.
            logger.error("job %s: worker failed: %s", job_id, type(error).__name__)
            self._schedule(job_id, self._settings.lease_duration.total_seconds())
            return
        report = future.result()
        if self._on_report is not None:
            self._on_report(report)
        if report.retry_in_s is not None:
            self._schedule(job_id, report.retry_in_s)

    def _warm(self, pool: ProcessPoolExecutor) -> None:
        """Start every worker process now, in the background: a spawned worker imports the
        pipeline (onnxruntime, OpenCV, PyAV), seconds the first jobs should not wait for."""
        for _ in range(self._settings.workers):
            pool.submit(_worker_ready)

    def _replace_broken_pool(self) -> None:
        """A worker process died (crash, OOM kill): the pool is unusable, start a new one.

        The job it was running keeps its lease until it expires; then it is claimed again.
        """
        if self._pool is None:
            return
        logger.error("a worker process died; starting a new worker pool")
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        self._warm(self._pool)

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the parent runs an event loop and threads that fork would copy.
        return ProcessPoolExecutor(
            max_workers=self._settings.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_pool_worker,
            initargs=(self._settings, self._process_file),
        )

    async def check(self) -> None:
        if self._pool is None:
            raise RuntimeError("the worker pool is not running")

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        # Queued work is dropped (the rows stay queued); running jobs get a grace period,
        # then their processes are stopped. A stopped job keeps its lease until it expires
        # and is then run again by whichever service instance sweeps first.
        # ProcessPoolExecutor cannot stop a running call; its process map is the only handle.
        processes: list[Any] = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        grace = self._settings.shutdown_grace.total_seconds()
        await asyncio.to_thread(_join_or_terminate, processes, grace)


def _join_or_terminate(processes: list[Any], grace_s: float) -> None:
    deadline = time.monotonic() + grace_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            logger.warning("stopping worker process %s with a job still running", process.pid)
            process.terminate()
            process.join(10)


class CeleryDispatcher:
    """Publishes job ids to RabbitMQ for ``enclave worker`` processes."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._app: Any = None

    async def start(self) -> None:
        from app.jobs.celery_app import create_celery

        self._app = create_celery(self._settings)

    async def dispatch(self, job_id: uuid.UUID, *, delay_s: float = 0.0) -> None:
        from app.jobs.celery_app import RUN_JOB_TASK

        app = self._require_app()
        await asyncio.to_thread(
            app.send_task, RUN_JOB_TASK, args=[str(job_id)], countdown=delay_s or None
        )

    async def check(self) -> None:
        app = self._require_app()

        def ping() -> None:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=3)

        await asyncio.to_thread(ping)

    async def close(self) -> None:
        if self._app is not None:
            app, self._app = self._app, None
            await asyncio.to_thread(app.close)

    def _require_app(self) -> Any:
        if self._app is None:
            raise RuntimeError("the Celery dispatcher is not started")
        return self._app


def build_dispatcher(
    settings: Settings,
    *,
    process_file: ProcessFile = pipeline_process_file,
    on_report: ReportListener | None = None,
) -> Dispatcher:
    """The dispatcher ``settings.dispatch`` names."""
    if settings.dispatch == "celery":
        return CeleryDispatcher(settings)
    return InProcessDispatcher(settings, process_file=process_file, on_report=on_report)
