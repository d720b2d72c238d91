"""Prometheus metrics of one service process, on its own registry (none at import time).

``enclave_queue_depth`` (queued jobs) is the autoscaling signal; ``enclave_jobs`` counts
jobs by state; ``enclave_stage_seconds`` times download, process and upload per job.
Gauges are read from the job store at scrape time, so every API replica reports the
same numbers whichever process ran the jobs.
"""

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_latest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.jobs import store
from app.jobs.states import JobState
from app.jobs.worker import RunReport

CONTENT_TYPE = CONTENT_TYPE_LATEST
STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Gauge(
            "enclave_jobs", "Jobs in the store by state", ["state"], registry=self.registry
        )
        self.queue_depth = Gauge(
            "enclave_queue_depth", "Jobs waiting for a worker", registry=self.registry
        )
        self.stage_seconds = Histogram(
            "enclave_stage_seconds",
            "Seconds one job spent in a stage",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.finished = Counter(
            "enclave_job_runs_finished",
            "Job runs this process saw end, by outcome",
            ["state"],
            registry=self.registry,
        )

    def observe(self, report: RunReport) -> None:
        """Record one finished run (called by whoever ran it: dispatcher or worker)."""
        for stage, seconds in report.timings.items():
            self.stage_seconds.labels(stage=stage).observe(seconds)
        if report.state is not None:
            self.finished.labels(state=report.state.value).inc()

    async def refresh(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        async with sessions() as session:
            counts = await store.count_jobs_by_state(session)
        for state in JobState:
            self.jobs.labels(state=state.value).set(counts[state])
        self.queue_depth.set(counts[JobState.QUEUED])

    def render(self) -> bytes:
        return bytes(_generate_latest(self.registry))
