"""Queries on the job store; every state change is one conditional UPDATE.

The row is the truth. A worker owns a job only while it holds an unexpired lease that it
took with ``claim_job``; every later write by that worker is conditional on
``lease_owner``, so a worker whose lease was taken over (it stalled, or was presumed dead)
can no longer change the job. Callers own the transaction: these functions never commit.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import CursorResult, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import JobNotFoundError
from app.jobs.models import Job, Upload
from app.jobs.states import ErrorCode, JobState, predecessors, transition_stamps


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"
    GONE = "gone"  # no such job, deleted, or already terminal: drop the message
    BUSY = "busy"  # another worker holds a live lease: look again when it expires
    NOT_YET = "not_yet"  # waiting out a retry backoff
    EXPIRED = "expired"  # its TTL ran out before it started; it is now failed


@dataclass(frozen=True)
class ClaimResult:
    outcome: ClaimOutcome
    retry_at: datetime | None = None
    job: Job | None = None  # the claimed job as it now stands (CLAIMED only)


@dataclass(frozen=True)
class Heartbeat:
    """What a lease renewal learned: whether the owner asked to cancel."""

    cancel_requested: bool


async def add_job(session: AsyncSession, job: Job) -> None:
    session.add(job)
    await session.flush()


async def get_job(session: AsyncSession, job_id: uuid.UUID, *, owner: str | None = None) -> Job:
    """The job (not deleted), restricted to ``owner`` when given; else ``JobNotFoundError``."""
    query = select(Job).where(Job.id == job_id, Job.deleted_at.is_(None))
    if owner is not None:
        query = query.where(Job.owner == owner)
    job = (await session.execute(query)).scalar_one_or_none()
    if job is None:
        raise JobNotFoundError(job_id)
    return job


async def get_job_including_deleted(session: AsyncSession, job_id: uuid.UUID) -> Job:
    job = await refresh_job(session, job_id)
    if job is None:
        raise JobNotFoundError(job_id)
    return job


async def refresh_job(session: AsyncSession, job_id: uuid.UUID) -> Job | None:
    """The current row, bypassing the session's identity map (``None`` when absent)."""
    query = select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one_or_none()


async def find_job_by_idempotency_key(session: AsyncSession, owner: str, key: str) -> Job | None:
    query = select(Job).where(Job.owner == owner, Job.idempotency_key == key)
    return (await session.execute(query)).scalar_one_or_none()


async def list_jobs(
    session: AsyncSession,
    owner: str | None,
    *,
    state: JobState | None = None,
    before: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
) -> list[Job]:
    """The owner's jobs (everyone's for ``None``), newest first, after ``before``."""
    query = select(Job).where(Job.deleted_at.is_(None))
    if owner is not None:
        query = query.where(Job.owner == owner)
    if state is not None:
        query = query.where(Job.state == state)
    if before is not None:
        created_at, job_id = before
        query = query.where(
            or_(
                Job.created_at < created_at,
                and_(Job.created_at == created_at, Job.id < job_id),
            )
        )
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def count_jobs_by_state(session: AsyncSession) -> dict[JobState, int]:
    query = select(Job.state, func.count()).where(Job.deleted_at.is_(None)).group_by(Job.state)
    counts = {state: 0 for state in JobState}
    for state, count in await session.execute(query):
        counts[JobState(state)] = count
    return counts


async def count_queued(session: AsyncSession) -> int:
    query = select(func.count()).where(Job.state == JobState.QUEUED, Job.deleted_at.is_(None))
    return int((await session.execute(query)).scalar_one())


async def transition(
    session: AsyncSession,
    job_id: uuid.UUID,
    target: JobState,
    now: datetime,
    *,
    lease_owner: str | None = None,
    values: Mapping[str, Any] | None = None,
    only_from: Sequence[JobState] | None = None,
) -> bool:
    """Move a job to ``target`` if the machine allows it from its current state.

    With ``lease_owner`` the update also requires that worker to hold the lease. Returns
    whether the row changed (``False``: someone else moved it first, or it is gone).
    """
    allowed = predecessors(target)
    if only_from is not None:
        allowed = allowed & frozenset(only_from)
    conditions = [Job.id == job_id, Job.state.in_(sorted(allowed))]
    if lease_owner is not None:
        conditions.append(Job.lease_owner == lease_owner)
    statement = (
        update(Job)
        .where(*conditions)
        .values(state=target, **transition_stamps(target, now), **(values or {}))
        .execution_options(synchronize_session=False)
    )
    return _rowcount(await session.execute(statement)) == 1


async def claim_job(
    session: AsyncSession, job_id: uuid.UUID, worker_id: str, now: datetime, lease: timedelta
) -> ClaimResult:
    """Take the job for ``worker_id`` with a lease until ``now + lease``.

    Succeeds for a queued job (past its retry backoff, within its TTL) and for a running
    job whose lease has expired (its worker died) while attempts remain; an orphan with no
    attempts left fails. Exactly one of several racing workers gets rowcount 1.
    """
    statement = (
        update(Job)
        .where(
            Job.id == job_id,
            Job.deleted_at.is_(None),
            Job.cancel_requested.is_(False),
            or_(
                and_(
                    Job.state == JobState.QUEUED,
                    or_(Job.next_attempt_at.is_(None), Job.next_attempt_at <= now),
                    # Never started and past its time to live: expired below, not claimed.
                    or_(Job.attempts > 0, Job.expires_at.is_(None), Job.expires_at >= now),
                ),
                and_(
                    Job.state == JobState.RUNNING,
                    Job.lease_expires < now,
                    Job.attempts < Job.max_attempts,
                ),
            ),
        )
        .values(
            state=JobState.RUNNING,
            lease_owner=worker_id,
            lease_expires=now + lease,
            attempts=Job.attempts + 1,
            **transition_stamps(JobState.RUNNING, now),
        )
        # The claimed row comes back with the UPDATE: one statement on the common path.
        .returning(Job)
        .execution_options(populate_existing=True)
    )
    claimed = (await session.execute(statement)).scalar_one_or_none()
    if claimed is not None:
        return ClaimResult(ClaimOutcome.CLAIMED, job=claimed)
    if await expire_unstarted(session, now, job_id=job_id):
        return ClaimResult(ClaimOutcome.EXPIRED)
    job = await refresh_job(session, job_id)
    if job is None or job.deleted_at is not None or job.state.is_terminal():
        return ClaimResult(ClaimOutcome.GONE)
    orphaned = job.state is JobState.RUNNING and job.lease_expires and job.lease_expires < now
    if orphaned and job.cancel_requested:
        # Cancel arrived while it ran and its worker died: nobody else will end it.
        await transition(session, job_id, JobState.CANCELED, now)
        return ClaimResult(ClaimOutcome.GONE)
    if orphaned:
        # Every attempt so far died with its worker (a crash, OOM kill): stop retrying.
        await transition(
            session,
            job_id,
            JobState.FAILED,
            now,
            values={
                "error_code": ErrorCode.TOO_MANY_ATTEMPTS,
                "error_detail": f"the worker stopped during each of {job.attempts} attempts",
            },
        )
        return ClaimResult(ClaimOutcome.GONE)
    if job.state is JobState.RUNNING:
        return ClaimResult(ClaimOutcome.BUSY, retry_at=job.lease_expires)
    return ClaimResult(ClaimOutcome.NOT_YET, retry_at=job.next_attempt_at)


async def heartbeat(
    session: AsyncSession,
    job_id: uuid.UUID,
    worker_id: str,
    now: datetime,
    lease: timedelta,
    *,
    progress: float,
    stage: str,
) -> Heartbeat | None:
    """Extend the lease and record progress; ``None`` when the lease is no longer ours."""
    statement = (
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.RUNNING, Job.lease_owner == worker_id)
        .values(lease_expires=now + lease, progress=progress, stage=stage)
        .returning(Job.cancel_requested)
        .execution_options(synchronize_session=False)
    )
    row = (await session.execute(statement)).first()
    return None if row is None else Heartbeat(cancel_requested=bool(row[0]))


async def request_cancel(session: AsyncSession, job_id: uuid.UUID) -> bool:
    """Flag a running job for cancellation; its worker stops at the next frame."""
    statement = (
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.RUNNING)
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(await session.execute(statement)) == 1


async def expire_unstarted(
    session: AsyncSession, now: datetime, *, job_id: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Fail queued jobs that never started within their TTL; returns their ids."""
    conditions = [
        Job.state == JobState.QUEUED,
        Job.attempts == 0,
        Job.expires_at < now,
        Job.deleted_at.is_(None),
    ]
    if job_id is not None:
        conditions.append(Job.id == job_id)
    statement = (
        update(Job)
        .where(*conditions)
        .values(
            state=JobState.FAILED,
            error_code=ErrorCode.EXPIRED,
            error_detail="the job was not started before its time to live ran out",
            **transition_stamps(JobState.FAILED, now),
        )
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    return [row[0] for row in await session.execute(statement)]


class DueJob(NamedTuple):
    id: uuid.UUID
    state: JobState


async def due_jobs(session: AsyncSession, now: datetime) -> list[DueJob]:
    """Jobs a worker should look at now, oldest first: queued and due, or running on an
    expired lease (an orphan); each with its state, so no caller reads the rows again."""
    query = (
        select(Job.id, Job.state)
        .where(
            Job.deleted_at.is_(None),
            or_(
                and_(
                    Job.state == JobState.QUEUED,
                    or_(Job.next_attempt_at.is_(None), Job.next_attempt_at <= now),
                ),
                and_(Job.state == JobState.RUNNING, Job.lease_expires < now),
            ),
        )
        .order_by(Job.created_at)
    )
    return [DueJob(job_id, state) for job_id, state in await session.execute(query)]


async def jobs_with_inputs_to_purge(session: AsyncSession) -> list[Job]:
    """Ended (or deleted) jobs whose inputs are still stored."""
    query = select(Job).where(
        Job.inputs_purged_at.is_(None),
        or_(Job.state.in_(sorted(_terminal())), Job.deleted_at.is_not(None)),
    )
    return list((await session.execute(query)).scalars())


async def jobs_with_outputs_to_purge(session: AsyncSession, finished_before: datetime) -> list[Job]:
    """Ended jobs whose outputs outlived the retention period (or whose job was deleted)."""
    query = select(Job).where(
        Job.outputs_purged_at.is_(None),
        Job.output_key.is_not(None),
        or_(
            and_(Job.finished_at < finished_before, Job.state.in_(sorted(_terminal()))),
            Job.deleted_at.is_not(None),
        ),
    )
    return list((await session.execute(query)).scalars())


async def stamp(session: AsyncSession, job_id: uuid.UUID, **values: Any) -> None:
    """Set columns that are not part of the state machine (purge and deletion times)."""
    statement = (
        update(Job)
        .where(Job.id == job_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.execute(statement)


async def add_upload(session: AsyncSession, upload: Upload) -> None:
    session.add(upload)
    await session.flush()


async def find_unused_upload(
    session: AsyncSession, upload_id: uuid.UUID, owner: str
) -> Upload | None:
    """An upload of ``owner`` no job has claimed yet."""
    query = select(Upload).where(
        Upload.id == upload_id, Upload.owner == owner, Upload.job_id.is_(None)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def consume_upload(
    session: AsyncSession, upload_id: uuid.UUID, owner: str, job_id: uuid.UUID
) -> Upload | None:
    """Bind an unused upload of ``owner`` to ``job_id``; ``None`` if none is available."""
    statement = (
        update(Upload)
        .where(Upload.id == upload_id, Upload.owner == owner, Upload.job_id.is_(None))
        .values(job_id=job_id)
        .returning(Upload)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def abandoned_uploads(session: AsyncSession, created_before: datetime) -> list[Upload]:
    """Uploads no job ever used, older than ``created_before``."""
    query = select(Upload).where(Upload.job_id.is_(None), Upload.created_at < created_before)
    return list((await session.execute(query)).scalars())


async def delete_upload(session: AsyncSession, upload_id: uuid.UUID) -> bool:
    """Remove an upload row unless a job claimed it meanwhile."""
    statement = (
        delete(Upload)
        .where(Upload.id == upload_id, Upload.job_id.is_(None))
        .execution_options(synchronize_session=False)
    )
    return _rowcount(await session.execute(statement)) == 1


def _terminal() -> frozenset[JobState]:
    return frozenset(state for state in JobState if state.is_terminal())


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
