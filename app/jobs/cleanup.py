"""Retention: which stored objects belong to a job's inputs, and deleting them.

Inputs are deleted as soon as a job ends (by whoever ended it); a storage outage only
delays that, as the sweeper retries every ended job whose inputs are still stamped as kept.
"""

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.jobs import store
from app.jobs.models import Job
from app.storage.base import Storage
from app.storage.errors import StorageUnavailableError
from app.storage.keys import job_prefix

logger = logging.getLogger(__name__)


def input_prefixes(job: Job) -> list[str]:
    """The storage prefixes holding a job's inputs (its own, and those of its uploads)."""
    prefixes = {job_prefix(job.id, "inputs")}
    for key in [*job.source_keys, job.target_key]:
        prefixes.add(key.rsplit("/", 1)[0] + "/")
    return sorted(prefixes)


async def purge_inputs(
    sessions: async_sessionmaker[AsyncSession],
    storage: Storage,
    job_id: uuid.UUID,
    clock: Callable[[], datetime],
    known: Job | None = None,
) -> None:
    """Delete an ended job's inputs and stamp it; an outage is left to the sweeper.

    ``known``: the job as the caller already holds it (its input keys never change), which
    saves reading it again.
    """
    job = known
    if job is None:
        async with sessions() as session:
            job = await store.refresh_job(session, job_id)
    if job is None:
        return
    try:
        for prefix in input_prefixes(job):
            await storage.delete_prefix(prefix)
        async with sessions.begin() as session:
            await store.stamp(session, job_id, inputs_purged_at=clock())
    except (StorageUnavailableError, OperationalError) as exc:
        logger.warning("job %s: inputs not purged yet (%s)", job_id, type(exc).__name__)
