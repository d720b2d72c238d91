"""Getting a job id to a worker: in-process (spawned worker processes) or Celery.

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
import shutil
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol

from app.heap import tune_garbage_collector
from app.jobs.pipeline_entry import ProcessFile, pipeline_process_file
from app.jobs.scratch import make_scratch_dir
from app.jobs.worker import RunReport
from app.jobs.worker_runtime import runtime_for
from app.settings import Settings

logger = logging.getLogger(__name__)

ReportListener = Callable[[RunReport], None]
RESTART_DELAY_S = 1.0
"""How long after a worker process died its replacement starts."""


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
    scratch_dir: Path | None = None,
) -> RunReport:
    """Run one job on this thread's worker runtime (its loop, engine and storage are kept
    for the next job)."""
    return runtime_for(settings, process_file, scratch_dir).run(job_id, worker_id)


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


@dataclass(frozen=True)
class _WorkerFailed:
    """What a worker process sends back when ``run_job`` itself raised."""

    error: str


_STOP = b""


def _worker_main(
    connection: Connection, settings: Settings, process_file: ProcessFile, scratch_dir: Path
) -> None:
    """A worker process: run each job id the API sends, answer with its report, one at a
    time, until told to stop or the API is gone; jobs keep their files in ``scratch_dir``."""
    if settings.worker_nice:
        _lower_cpu_priority(settings.worker_nice)
    tune_garbage_collector()
    while True:
        try:
            message = connection.recv_bytes()
        except (EOFError, OSError):
            return  # the API process is gone
        if message == _STOP:
            return
        job_id = uuid.UUID(bytes=message)
        outcome: RunReport | _WorkerFailed
        try:
            outcome = run_job_blocking(settings, job_id, process_file, scratch_dir=scratch_dir)
        except Exception as error:
            outcome = _WorkerFailed(type(error).__name__)
        try:
            connection.send(outcome)
        except OSError:
            return  # the API process is gone


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    connection: Connection
    scratch_dir: Path  # made here, so removed here too when the process dies mid-job
    job_id: uuid.UUID | None = None


class InProcessDispatcher:
    """Runs jobs in spawned worker processes owned by the API process, one job at a time
    each.

    Every worker has a pipe of its own. The event loop hands a job id to an idle worker
    and reads the report when the pipe turns readable (``add_reader``), so dispatching
    takes no thread in the API process; ``ProcessPoolExecutor`` took two threads and about
    0.16 ms of the API's CPU per job (docs/performance.md, fifth session). Ids wait here in
    arrival order until a worker is idle, so a long job never holds up another while a
    worker is free. A worker that dies is replaced; the job it held is looked at again
    once its lease can have expired (the job's row says what happened).
    """

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
        self._workers: list[_Worker] = []
        self._waiting: deque[uuid.UUID] = deque()
        self._pending: set[uuid.UUID] = set()  # waiting here or running in a worker
        self._timers: set[asyncio.TimerHandle] = set()
        self._running = False

    async def start(self) -> None:
        # Started now, in the background: a spawned worker imports the pipeline
        # (onnxruntime, OpenCV, PyAV), seconds the first jobs should not wait for.
        self._running = True
        for _ in range(self._settings.workers):
            self._start_worker()

    async def dispatch(self, job_id: uuid.UUID, *, delay_s: float = 0.0) -> None:
        self._schedule(job_id, delay_s)

    @property
    def pending(self) -> int:
        """Jobs handed to this dispatcher and not yet reported back."""
        return len(self._pending)

    def _schedule(self, job_id: uuid.UUID, delay_s: float) -> None:
        if delay_s > 0:
            handle = asyncio.get_running_loop().call_later(delay_s, self._enqueue, job_id)
            self._timers.add(handle)
        else:
            self._enqueue(job_id)

    def _enqueue(self, job_id: uuid.UUID) -> None:
        self._timers = {timer for timer in self._timers if not timer.cancelled()}
        if not self._running or job_id in self._pending:
            return  # closed, or already waiting for a worker: one delivery is enough
        self._pending.add(job_id)
        self._waiting.append(job_id)
        self._hand_out()

    def _hand_out(self) -> None:
        for worker in list(self._workers):
            if not self._waiting:
                return
            if worker.job_id is not None:
                continue
            job_id = self._waiting.popleft()
            try:
                # One id in flight per worker: the pipe never fills, the write never blocks.
                worker.connection.send_bytes(job_id.bytes)
            except OSError:
                self._waiting.appendleft(job_id)  # never delivered: the next worker's
                self._on_exit(worker)
                continue
            worker.job_id = job_id

    def _start_worker(self) -> None:
        context = multiprocessing.get_context("spawn")  # not fork: this process has threads
        ours, theirs = context.Pipe()
        scratch_dir = make_scratch_dir()  # this process's: it removes it if the worker dies
        process = context.Process(
            target=_worker_main,
            args=(theirs, self._settings, self._process_file, scratch_dir),
            name="enclave-worker",
        )
        process.start()
        theirs.close()  # the worker's end lives in the worker: EOF here when it dies
        worker = _Worker(process, ours, scratch_dir)
        self._workers.append(worker)
        loop = asyncio.get_running_loop()
        loop.add_reader(ours.fileno(), self._on_readable, worker)
        loop.add_reader(process.sentinel, self._on_exit, worker)
        self._hand_out()

    def _on_readable(self, worker: _Worker) -> None:
        try:
            # Unpickled: the peer is a worker process this one started, never the network.
            outcome: RunReport | _WorkerFailed = worker.connection.recv()
        except (EOFError, OSError):
            self._on_exit(worker)  # the worker died mid-message or before answering
            return
        job_id, worker.job_id = worker.job_id, None
        self._hand_out()
        if job_id is None:
            return
        self._pending.discard(job_id)
        if isinstance(outcome, _WorkerFailed):
            # The job store was unreachable while finishing, say; the row still says
            # what happened, so look again once the lease can have expired.
            logger.error("job %s: worker failed: %s", job_id, outcome.error)
            self._schedule(job_id, self._settings.lease_duration.total_seconds())
            return
        if self._on_report is not None:
            self._on_report(outcome)
        if outcome.retry_in_s is not None:
            self._schedule(job_id, outcome.retry_in_s)

    def _on_exit(self, worker: _Worker) -> None:
        """A worker process ended (crash, OOM kill): replace it and re-examine its job."""
        if worker not in self._workers:
            return
        self._forget(worker)
        worker.process.join(0)  # reap it now rather than at the next start
        # A job's inputs are faces: what the dead worker held must not stay behind.
        shutil.rmtree(worker.scratch_dir, ignore_errors=True)
        if not self._running:
            return
        logger.error("worker process %s died; starting another", worker.process.pid)
        if worker.job_id is not None:
            # Its job keeps its lease until the lease expires; then it is claimed again.
            self._pending.discard(worker.job_id)
            self._schedule(worker.job_id, self._settings.lease_duration.total_seconds())
        handle = asyncio.get_running_loop().call_later(
            RESTART_DELAY_S, self._restart_worker
        )  # not at once: a worker that dies on start-up would spin
        self._timers.add(handle)

    def _restart_worker(self) -> None:
        if self._running:
            self._start_worker()

    def _forget(self, worker: _Worker) -> None:
        self._workers.remove(worker)
        _unwatch(worker)
        worker.connection.close()

    async def check(self) -> None:
        if not self._running:
            raise RuntimeError("the job workers are not running")

    async def close(self) -> None:
        self._running = False
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._waiting.clear()
        workers, self._workers = self._workers, []
        for worker in workers:
            _unwatch(worker)  # the pipe stays open until the worker has read _STOP
            with contextlib.suppress(OSError):
                worker.connection.send_bytes(_STOP)  # read after the job it is running
        # Waiting ids are dropped (the rows stay queued); running jobs get a grace period,
        # then their processes are stopped. A stopped job keeps its lease until it expires
        # and is then run again by whichever service instance sweeps first.
        grace = self._settings.shutdown_grace.total_seconds()
        await asyncio.to_thread(_join_or_terminate, [worker.process for worker in workers], grace)
        for worker in workers:
            worker.connection.close()
            await asyncio.to_thread(shutil.rmtree, worker.scratch_dir, ignore_errors=True)


def _unwatch(worker: _Worker) -> None:
    """Stop reading the worker's pipe and exit from the event loop."""
    loop = asyncio.get_running_loop()
    loop.remove_reader(worker.connection.fileno())
    loop.remove_reader(worker.process.sentinel)


def _join_or_terminate(processes: list[BaseProcess], grace_s: float) -> None:
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
