"""The job state machine: which state may follow which, and what each transition stamps.

::

    queued ──▶ running ──▶ succeeded
      │  ▲        │
      │  └────────┤ (retry after a transient failure, or a lost lease)
      │           ├──▶ failed
      ├───────────┴──▶ canceled
      └──▶ failed (expired before it started)

Terminal states never change again. The store enforces the machine in SQL: every
transition is a conditional ``UPDATE … WHERE state IN (allowed predecessors)``, so two
processes racing on one job cannot both win.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    def can_become(self, target: "JobState") -> bool:
        return target in _NEXT[self]


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED})

_NEXT: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.FAILED, JobState.CANCELED}),
    JobState.RUNNING: frozenset(
        {JobState.QUEUED, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED}
    ),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELED: frozenset(),
}


def predecessors(target: JobState) -> frozenset[JobState]:
    """The states a job may be in for ``target`` to follow."""
    return frozenset(state for state, after in _NEXT.items() if target in after)


def transition_stamps(target: JobState, now: datetime) -> dict[str, Any]:
    """Column values every transition into ``target`` sets, besides the state itself."""
    if target is JobState.RUNNING:
        return {"started_at": now, "stage": "starting", "next_attempt_at": None}
    if target is JobState.QUEUED:
        return {"lease_owner": None, "lease_expires": None, "stage": None, "progress": 0.0}
    return {"finished_at": now, "lease_owner": None, "lease_expires": None}


class ErrorCode(StrEnum):
    """Why a job failed, as stored on the job and shown to its owner."""

    EXPIRED = "expired"
    BAD_INPUT = "bad_input"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    DATABASE_UNAVAILABLE = "database_unavailable"
    PROCESSING_FAILED = "processing_failed"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
