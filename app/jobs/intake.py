"""Inserting submitted jobs: group commit, with the queue bound checked in the same transaction.

Every submission used to take two transactions of its own (a ``COUNT`` of queued jobs,
then the insert); with SQLite's one writer and a thread hop per statement that was most
of a submission's cost. Here submissions that arrive while a transaction is being
written wait for the next one, which counts the queue once, claims each job's uploads
and inserts all the jobs, then commits once. A job whose own part fails (its
``Idempotency-Key`` taken by a racing request, its upload already used) is rolled back to
its savepoint alone; the others commit. Each caller still returns only after its own job
is committed (or refused), so a ``202`` always means a stored job.
"""

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import QueueFullError, UploadNotFoundError
from app.jobs import store
from app.jobs.models import Job

QUEUE_FULL_RETRY_AFTER_S = 10
FULL_QUEUE_MEMORY_S = 0.25
"""After a transaction found the queue full, refuse at once for this long (no DB work)."""


@dataclass
class _Pending:
    job: Job
    uploads: Sequence[uuid.UUID]
    done: asyncio.Future[None]
    error: BaseException | None = field(default=None)


class JobWriter:
    """Commits submitted jobs in shared transactions; ``insert`` raises what the job's own
    insert would have raised: ``QueueFullError``, ``UploadNotFoundError``, ``IntegrityError``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], max_queued: int) -> None:
        self.sessions = sessions
        self.max_queued = max_queued
        self._waiting: list[_Pending] = []
        self._committer: asyncio.Task[None] | None = None
        self._full_until = 0.0
        self._last_queued = 0

    def refuse_if_recently_full(self) -> None:
        """Refuse before any work when the last transaction found the queue full just now."""
        if time.monotonic() < self._full_until:
            raise QueueFullError(self._last_queued, self.max_queued, QUEUE_FULL_RETRY_AFTER_S)

    async def insert(self, job: Job, uploads: Sequence[uuid.UUID] = ()) -> None:
        """Insert ``job`` (claiming ``uploads`` for it) in the next shared transaction.

        Once called, the job is in the queue of writes: a cancelled caller does not take it
        out (its transaction may already be under way), so callers treat a cancellation
        here as "maybe inserted".
        """
        loop = asyncio.get_running_loop()
        pending = _Pending(job, uploads, loop.create_future())
        self._waiting.append(pending)
        committer = self._committer
        if committer is None or committer.done() or committer.get_loop() is not loop:
            self._committer = loop.create_task(self._commit_waiting())
        await asyncio.shield(pending.done)

    async def _commit_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await self._commit(batch)
            except Exception:
                # Something failed for the batch as a whole: try each job on its own, so
                # each caller gets its own job's outcome.
                for pending in batch:
                    pending.error = None
                    try:
                        await self._commit([pending])
                    except Exception as error:
                        pending.error = error
            except BaseException as error:
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_exception(RuntimeError("the job writer was stopped"))
                raise error
            for pending in batch:
                if pending.done.done():
                    continue
                if pending.error is None:
                    pending.done.set_result(None)
                else:
                    pending.done.set_exception(pending.error)

    async def _commit(self, batch: list[_Pending]) -> None:
        async with self.sessions.begin() as session:
            queued = await store.count_queued(session)
            self._last_queued = queued
            room = self.max_queued - queued
            plain: list[Job] = []
            for pending in batch:
                if room <= 0:
                    pending.error = QueueFullError(
                        queued, self.max_queued, QUEUE_FULL_RETRY_AFTER_S
                    )
                    self._full_until = time.monotonic() + FULL_QUEUE_MEMORY_S
                    continue
                if pending.uploads or pending.job.idempotency_key is not None:
                    pending.error = await _insert_alone(session, pending)
                else:
                    plain.append(pending.job)  # cannot conflict: a fresh uuid4 key
                if pending.error is None:
                    room -= 1
                    queued += 1
            if plain:
                # One executemany for the batch (the ORM's unit of work per object cost
                # more than the insert itself); the Job objects stay as they are.
                await session.execute(insert(Job), [_row(job) for job in plain])


_JOB_COLUMNS = tuple(attribute.key for attribute in inspect(Job).column_attrs)


def _row(job: Job) -> dict[str, Any]:
    return {key: getattr(job, key) for key in _JOB_COLUMNS}


async def _insert_alone(session: AsyncSession, pending: _Pending) -> BaseException | None:
    """Claim the uploads and insert the job under a savepoint; the error, if it failed."""
    job = pending.job
    try:
        async with session.begin_nested():
            for upload_id in pending.uploads:
                if await store.consume_upload(session, upload_id, job.owner, job.id) is None:
                    raise UploadNotFoundError(upload_id)
            await store.add_job(session, job)
    except (IntegrityError, UploadNotFoundError) as error:
        return error
    return None
