"""The job store on SQLite and real PostgreSQL: claims, leases, TTL, listing."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.jobs import store
from app.jobs.models import Job
from app.jobs.states import JobState
from app.jobs.store import ClaimOutcome

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)

Sessions = async_sessionmaker[AsyncSession]


def make_job(owner: str = "alice", created_at: datetime = NOW, **values: object) -> Job:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "owner": owner,
        "state": JobState.QUEUED,
        "options": {},
        "source_keys": ["inputs/a/source.jpg"],
        "target_key": "inputs/a/target.jpg",
        "max_attempts": 3,
        "created_at": created_at,
        "expires_at": created_at + timedelta(hours=1),
    }
    fields.update(values)
    return Job(**fields)


async def insert(sessions: Sessions, job: Job) -> uuid.UUID:
    async with sessions.begin() as session:
        await store.add_job(session, job)
    return job.id


async def claim(sessions: Sessions, job_id: uuid.UUID, worker: str, now: datetime = NOW):
    async with sessions.begin() as session:
        return await store.claim_job(session, job_id, worker, now, LEASE)


async def load(sessions: Sessions, job_id: uuid.UUID) -> Job:
    async with sessions() as session:
        job = await store.refresh_job(session, job_id)
        assert job is not None
        return job


async def test_racing_workers_claim_a_job_exactly_once(session_factory: Sessions) -> None:
    job_id = await insert(session_factory, make_job())
    results = await asyncio.gather(*(claim(session_factory, job_id, f"w{i}") for i in range(8)))
    outcomes = [result.outcome for result in results]
    assert outcomes.count(ClaimOutcome.CLAIMED) == 1
    assert set(outcomes) == {ClaimOutcome.CLAIMED, ClaimOutcome.BUSY}
    job = await load(session_factory, job_id)
    assert job.state is JobState.RUNNING
    assert job.attempts == 1
    assert job.lease_expires == NOW + LEASE
    assert job.started_at == NOW
    # The winner gets the job as claimed, from the claim itself (the worker runs from it).
    (won,) = [result for result in results if result.outcome is ClaimOutcome.CLAIMED]
    assert won.job is not None and won.job.id == job_id
    assert won.job.state is JobState.RUNNING and won.job.attempts == 1
    assert won.job.lease_owner == job.lease_owner and won.job.lease_expires == NOW + LEASE
    assert all(result.job is None for result in results if result is not won)


async def test_expired_lease_is_taken_over_and_the_old_worker_is_locked_out(
    session_factory: Sessions,
) -> None:
    job_id = await insert(session_factory, make_job())
    assert (await claim(session_factory, job_id, "dead")).outcome is ClaimOutcome.CLAIMED
    busy = await claim(session_factory, job_id, "new", NOW + LEASE / 2)
    assert busy.outcome is ClaimOutcome.BUSY
    assert busy.retry_at == NOW + LEASE

    later = NOW + LEASE + timedelta(seconds=1)
    assert (await claim(session_factory, job_id, "new", later)).outcome is ClaimOutcome.CLAIMED
    async with session_factory.begin() as session:
        beat = await store.heartbeat(
            session, job_id, "dead", later, LEASE, progress=0.5, stage="swap"
        )
        finished = await store.transition(
            session, job_id, JobState.SUCCEEDED, later, lease_owner="dead"
        )
    assert beat is None
    assert not finished
    async with session_factory.begin() as session:
        assert await store.transition(session, job_id, JobState.SUCCEEDED, later, lease_owner="new")
    job = await load(session_factory, job_id)
    assert (job.state, job.attempts, job.lease_owner) == (JobState.SUCCEEDED, 2, None)
    assert job.finished_at == later


async def test_terminal_jobs_never_change_again(session_factory: Sessions) -> None:
    job_id = await insert(session_factory, make_job())
    async with session_factory.begin() as session:
        assert await store.transition(session, job_id, JobState.CANCELED, NOW)
    async with session_factory.begin() as session:
        for target in JobState:
            assert not await store.transition(session, job_id, target, NOW)
    assert (await claim(session_factory, job_id, "w")).outcome is ClaimOutcome.GONE
    assert (await load(session_factory, job_id)).state is JobState.CANCELED


async def test_job_past_its_ttl_fails_as_expired_at_claim_time(session_factory: Sessions) -> None:
    job_id = await insert(session_factory, make_job(expires_at=NOW - timedelta(seconds=1)))
    assert (await claim(session_factory, job_id, "w")).outcome is ClaimOutcome.EXPIRED
    job = await load(session_factory, job_id)
    assert (job.state, job.error_code) == (JobState.FAILED, "expired")
    assert job.attempts == 0


async def test_sweeper_expires_only_unstarted_jobs_past_ttl(session_factory: Sessions) -> None:
    stale = await insert(session_factory, make_job(expires_at=NOW - timedelta(minutes=1)))
    fresh = await insert(session_factory, make_job())
    retried = await insert(
        session_factory, make_job(expires_at=NOW - timedelta(minutes=1), attempts=1)
    )
    async with session_factory.begin() as session:
        expired = await store.expire_unstarted(session, NOW)
    assert expired == [stale]
    assert (await load(session_factory, fresh)).state is JobState.QUEUED
    assert (await load(session_factory, retried)).state is JobState.QUEUED


async def test_retry_backoff_holds_a_job_until_it_is_due(session_factory: Sessions) -> None:
    due = NOW + timedelta(seconds=10)
    job_id = await insert(session_factory, make_job(next_attempt_at=due))
    result = await claim(session_factory, job_id, "w")
    assert (result.outcome, result.retry_at) == (ClaimOutcome.NOT_YET, due)
    assert (await claim(session_factory, job_id, "w", due)).outcome is ClaimOutcome.CLAIMED


async def test_heartbeat_extends_lease_records_progress_and_reports_cancel(
    session_factory: Sessions,
) -> None:
    job_id = await insert(session_factory, make_job())
    await claim(session_factory, job_id, "w")
    later = NOW + timedelta(seconds=20)
    async with session_factory.begin() as session:
        beat = await store.heartbeat(
            session, job_id, "w", later, LEASE, progress=0.25, stage="swap"
        )
    assert beat is not None and not beat.cancel_requested
    async with session_factory.begin() as session:
        assert await store.request_cancel(session, job_id)
        beat = await store.heartbeat(session, job_id, "w", later, LEASE, progress=0.5, stage="swap")
    assert beat is not None and beat.cancel_requested
    job = await load(session_factory, job_id)
    assert (job.progress, job.stage, job.lease_expires) == (0.5, "swap", later + LEASE)


async def test_dispatch_list_holds_due_queued_jobs_and_orphans_only(
    session_factory: Sessions,
) -> None:
    queued = await insert(session_factory, make_job())
    waiting = await insert(session_factory, make_job(next_attempt_at=NOW + timedelta(minutes=1)))
    live = await insert(session_factory, make_job())
    orphan = await insert(session_factory, make_job())
    await claim(session_factory, live, "w1")
    await claim(session_factory, orphan, "w2", NOW - LEASE - timedelta(seconds=1))
    async with session_factory() as session:
        due = await store.due_jobs(session, NOW)
    assert set(due) == {(queued, JobState.QUEUED), (orphan, JobState.RUNNING)}
    assert waiting not in {job.id for job in due}


async def test_listing_is_per_owner_newest_first_and_pages_without_gaps(
    session_factory: Sessions,
) -> None:
    mine = [
        await insert(session_factory, make_job(created_at=NOW + timedelta(seconds=i // 2)))
        for i in range(7)
    ]
    await insert(session_factory, make_job(owner="mallory"))
    seen: list[uuid.UUID] = []
    before = None
    async with session_factory() as session:
        while True:
            page = await store.list_jobs(session, "alice", before=before, limit=3)
            if not page:
                break
            seen.extend(job.id for job in page)
            before = (page[-1].created_at, page[-1].id)
    assert sorted(seen) == sorted(mine)
    assert len(seen) == len(set(seen))
    async with session_factory() as session:
        created = [job.created_at for job in await store.list_jobs(session, "alice", limit=10)]
        assert created == sorted(created, reverse=True)
        assert await store.list_jobs(session, "alice", state=JobState.RUNNING) == []
        assert await store.count_queued(session) == 8


async def test_an_orphan_with_no_attempts_left_fails(session_factory: Sessions) -> None:
    job_id = await insert(session_factory, make_job(max_attempts=1))
    await claim(session_factory, job_id, "crashed")
    later = NOW + LEASE + timedelta(seconds=1)
    assert (await claim(session_factory, job_id, "w", later)).outcome is ClaimOutcome.GONE
    job = await load(session_factory, job_id)
    assert (job.state, job.error_code, job.attempts) == (JobState.FAILED, "too_many_attempts", 1)
