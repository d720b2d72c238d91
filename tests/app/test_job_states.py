"""The job state machine, model-checked with Hypothesis against the real store (SQLite).

Random sequences of claims by two workers, heartbeats, finishes, retries, cancellations,
expiry sweeps and clock jumps run on one job; after every step the row must match a tiny
model of what the rules say, and terminal states must never change again.
"""

import asyncio
import shutil
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from app.db import create_engine, create_session_factory
from app.jobs import store
from app.jobs.models import Job
from app.jobs.states import TERMINAL_STATES, JobState, predecessors
from app.jobs.store import ClaimOutcome

LEASE = timedelta(seconds=30)
TTL = timedelta(seconds=100)
MAX_ATTEMPTS = 3
START = datetime(2030, 1, 1, tzinfo=UTC)
WORKERS = st.sampled_from(["w1", "w2"])


def test_transitions_table_is_closed_and_terminal_states_are_final() -> None:
    for state in JobState:
        assert state.is_terminal() == (state in TERMINAL_STATES)
        for target in JobState:
            assert state.can_become(target) == (state in predecessors(target))
    assert all(not state.can_become(target) for state in TERMINAL_STATES for target in JobState)
    assert JobState.QUEUED.can_become(JobState.RUNNING)
    assert JobState.RUNNING.can_become(JobState.QUEUED)  # retry or lost lease


class JobMachine(RuleBasedStateMachine):
    template: Path

    def __init__(self) -> None:
        super().__init__()
        # Memory-backed when available: hundreds of tiny commits, each fsynced on disk.
        shm = Path("/dev/shm")
        self.directory = Path(
            tempfile.mkdtemp(prefix="enclave-states-", dir=shm if shm.is_dir() else None)
        )
        shutil.copyfile(self.template, self.directory / "db.sqlite")
        self.loop = asyncio.new_event_loop()
        self.engine = create_engine(f"sqlite+aiosqlite:///{self.directory / 'db.sqlite'}")
        self.sessions = create_session_factory(self.engine)
        self.now = START
        self.job_id = uuid.uuid4()
        # The model.
        self.state = JobState.QUEUED
        self.owner: str | None = None
        self.lease_expires: datetime | None = None
        self.attempts = 0
        self.next_attempt_at: datetime | None = None
        self.cancel_requested = False
        self.ended_as: JobState | None = None
        job = Job(
            id=self.job_id,
            owner="alice",
            state=JobState.QUEUED,
            options={},
            source_keys=["inputs/x/s.png"],
            target_key="inputs/x/t.png",
            max_attempts=MAX_ATTEMPTS,
            created_at=START,
            expires_at=START + TTL,
        )
        self.run(self._add(job))

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    async def _add(self, job: Job) -> None:
        async with self.sessions.begin() as session:
            await store.add_job(session, job)

    def teardown(self) -> None:
        self.run(self.engine.dispose())
        self.loop.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _end(self, state: JobState) -> None:
        self.state, self.owner, self.lease_expires, self.ended_as = state, None, None, state

    def _expired_unstarted(self) -> bool:
        return self.state is JobState.QUEUED and self.attempts == 0 and self.now > START + TTL

    @rule(seconds=st.integers(0, 60))
    def clock_moves(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(worker=WORKERS)
    def claim(self, worker: str) -> None:
        async def claim() -> store.ClaimResult:
            async with self.sessions.begin() as session:
                return await store.claim_job(session, self.job_id, worker, self.now, LEASE)

        outcome = self.run(claim()).outcome
        if self._expired_unstarted():
            assert outcome is ClaimOutcome.EXPIRED
            self._end(JobState.FAILED)
            return
        lease_dead = self.lease_expires is not None and self.lease_expires < self.now
        orphan = self.state is JobState.RUNNING and lease_dead
        claimable = not self.cancel_requested and (
            (
                self.state is JobState.QUEUED
                and (self.next_attempt_at is None or self.next_attempt_at <= self.now)
            )
            or (orphan and self.attempts < MAX_ATTEMPTS)
        )
        assert (outcome is ClaimOutcome.CLAIMED) == claimable, outcome
        if claimable:
            self.state, self.owner, self.attempts = JobState.RUNNING, worker, self.attempts + 1
            self.lease_expires, self.next_attempt_at = self.now + LEASE, None
        elif orphan and self.cancel_requested:
            self._end(JobState.CANCELED)  # its worker died after the cancel request
        elif orphan:
            self._end(JobState.FAILED)  # every attempt died with its worker

    @rule(worker=WORKERS)
    def heartbeat(self, worker: str) -> None:
        async def beat() -> store.Heartbeat | None:
            async with self.sessions.begin() as session:
                return await store.heartbeat(
                    session, self.job_id, worker, self.now, LEASE, progress=0.5, stage="swap"
                )

        beat = self.run(beat())
        ours = self.state is JobState.RUNNING and self.owner == worker
        assert (beat is not None) == ours
        if beat is not None:
            assert beat.cancel_requested == self.cancel_requested
            self.lease_expires = self.now + LEASE

    @rule(worker=WORKERS, ending=st.sampled_from(sorted(TERMINAL_STATES)))
    def finish(self, worker: str, ending: JobState) -> None:
        async def finish() -> bool:
            async with self.sessions.begin() as session:
                return await store.transition(
                    session, self.job_id, ending, self.now, lease_owner=worker
                )

        changed = self.run(finish())
        assert changed == (self.state is JobState.RUNNING and self.owner == worker)
        if changed:
            self._end(ending)

    @rule(worker=WORKERS, backoff=st.integers(1, 30))
    def retry_later(self, worker: str, backoff: int) -> None:
        due = self.now + timedelta(seconds=backoff)

        async def requeue() -> bool:
            async with self.sessions.begin() as session:
                return await store.transition(
                    session,
                    self.job_id,
                    JobState.QUEUED,
                    self.now,
                    lease_owner=worker,
                    values={"next_attempt_at": due},
                )

        changed = self.run(requeue())
        assert changed == (self.state is JobState.RUNNING and self.owner == worker)
        if changed:
            self.state, self.owner, self.lease_expires, self.next_attempt_at = (
                JobState.QUEUED,
                None,
                None,
                due,
            )

    @rule()
    def owner_cancels(self) -> None:
        async def cancel() -> tuple[bool, bool]:
            async with self.sessions.begin() as session:
                now_ = await store.transition(
                    session, self.job_id, JobState.CANCELED, self.now, only_from=[JobState.QUEUED]
                )
                flagged = False if now_ else await store.request_cancel(session, self.job_id)
                return now_, flagged

        canceled, flagged = self.run(cancel())
        assert canceled == (self.state is JobState.QUEUED)
        assert flagged == (self.state is JobState.RUNNING)
        if canceled:
            self._end(JobState.CANCELED)
        if flagged:
            self.cancel_requested = True

    @rule()
    def sweeper_expires(self) -> None:
        async def sweep() -> list[uuid.UUID]:
            async with self.sessions.begin() as session:
                return await store.expire_unstarted(session, self.now)

        expired = self.run(sweep())
        assert (expired == [self.job_id]) == self._expired_unstarted()
        if expired:
            self._end(JobState.FAILED)

    @invariant()
    def row_matches_the_model(self) -> None:
        async def load() -> Job | None:
            async with self.sessions() as session:
                return await store.refresh_job(session, self.job_id)

        job = self.run(load())
        assert job is not None
        assert job.state is self.state
        assert job.attempts == self.attempts
        assert job.lease_owner == self.owner
        assert job.lease_expires == self.lease_expires
        assert (job.finished_at is not None) == job.state.is_terminal()
        assert (job.started_at is not None) == (self.attempts > 0)
        if self.ended_as is not None:
            assert job.state is self.ended_as


def test_job_state_machine_against_the_store(sqlite_template: Path) -> None:
    JobMachine.template = sqlite_template
    run_state_machine_as_test(
        JobMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
