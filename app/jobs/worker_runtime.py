"""What a worker process keeps between jobs: one event loop, job-store engine and storage,
and a private scratch directory (emptied after each job).

Building these per job (a new loop, a new connection pool, a new storage client, then
disposing of them) cost more CPU than a small image job itself; measured in
docs/performance.md (API). Each worker thread gets its own runtime, so a thread pool of
workers never shares a loop.
"""

import asyncio
import atexit
import contextlib
import shutil
import threading
import uuid
from pathlib import Path

from app.db import create_engine, create_session_factory
from app.jobs.pipeline_entry import ProcessFile
from app.jobs.scratch import make_scratch_dir
from app.jobs.worker import RunReport, WorkerContext, new_worker_id, run_job
from app.settings import Settings
from app.storage.factory import build_storage, storage_config_from_settings


class WorkerRuntime:
    """Runs jobs for one ``Settings`` on a loop, engine and storage client it keeps open."""

    def __init__(
        self, settings: Settings, process_file: ProcessFile, scratch_dir: Path | None = None
    ) -> None:
        self.settings = settings
        self.process_file = process_file
        self._runner = asyncio.Runner()
        self._engine = create_engine(settings.database_url)
        self._sessions = create_session_factory(self._engine)
        self._storage = build_storage(storage_config_from_settings(settings))
        # given by a dispatcher that removes it should this process die
        self.scratch_dir = scratch_dir or make_scratch_dir()
        self._closed = False

    def run(self, job_id: uuid.UUID, worker_id: str | None = None) -> RunReport:
        context = WorkerContext(
            settings=self.settings,
            sessions=self._sessions,
            storage=self._storage,
            process_file=self.process_file,
            worker_id=worker_id or new_worker_id(),
            scratch_dir=self.scratch_dir,
        )
        return self._runner.run(run_job(job_id, context))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._runner.run(self._engine.dispose())
        finally:
            self._runner.close()
            shutil.rmtree(self.scratch_dir, ignore_errors=True)


_local = threading.local()


def runtime_for(
    settings: Settings, process_file: ProcessFile, scratch_dir: Path | None = None
) -> WorkerRuntime:
    """This thread's runtime for ``settings`` (a new one, closing the old, if they changed);
    ``scratch_dir``: where its jobs keep their files (default: a new temporary directory)."""
    current: WorkerRuntime | None = getattr(_local, "runtime", None)
    if current is not None:
        if (
            current.settings is settings
            and current.process_file is process_file
            and scratch_dir in (None, current.scratch_dir)
        ):
            return current
        current.close()
    runtime = WorkerRuntime(settings, process_file, scratch_dir)
    _local.runtime = runtime
    atexit.register(_close_quietly, runtime)
    return runtime


def _close_quietly(runtime: WorkerRuntime) -> None:
    with contextlib.suppress(Exception):
        runtime.close()
