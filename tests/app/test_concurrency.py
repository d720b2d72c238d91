"""200 concurrent submissions: each is accepted (202) or refused (429); every accepted job
reaches a terminal state exactly once; none is lost or duplicated. On SQLite and PostgreSQL."""

import asyncio

import pytest
from sqlalchemy import func, select

from app.jobs.models import Job
from tests.app.api_client import TERMINAL, submit
from tests.app.conftest import running_api

SUBMISSIONS = 200


@pytest.mark.slow
async def test_200_concurrent_submissions_none_lost_or_duplicated(
    api_settings, database_url
) -> None:
    update = {"max_queued_jobs": 120, "workers": 2, "database_url": database_url}
    settings = api_settings.model_copy(update=update)
    async with running_api(settings) as api:
        responses = await asyncio.gather(*(submit(api, seed=i) for i in range(SUBMISSIONS)))
        statuses = [response.status_code for response in responses]
        assert set(statuses) <= {202, 429}, statuses
        accepted = [response.json()["id"] for response in responses if response.status_code == 202]
        assert len(accepted) >= settings.max_queued_jobs
        assert len(set(accepted)) == len(accepted)

        sessions = api.app.state.sessions
        for _ in range(1200):
            async with sessions() as session:
                rows = (await session.execute(select(Job.id, Job.state))).all()
            if all(state in TERMINAL for _, state in rows):
                break
            await asyncio.sleep(0.1)
        assert sorted(str(job_id) for job_id, _ in rows) == sorted(accepted)
        assert {state for _, state in rows} == {"succeeded"}
        async with sessions() as session:
            runs = await session.execute(select(func.sum(Job.attempts)))
            assert runs.scalar_one() == len(accepted)  # each ran exactly once
        for response in responses:
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) > 0
