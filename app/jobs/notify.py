"""Tell a job's webhook that the job ended (Standard Webhooks, signed, retried).

Called once per terminal transition by whoever made it (the worker, or the API for a
canceled or expired queued job). Delivery failures are logged, never raised: a receiver
that is down must not change how the job ended.
"""

import logging
from typing import Any

import httpx

from app.jobs.models import Job
from app.settings import Settings
from app.webhooks import WebhookPolicy, deliver

logger = logging.getLogger(__name__)


def webhook_policy(settings: Settings) -> WebhookPolicy:
    return WebhookPolicy(
        allowlist=settings.webhook_allowlist,
        allow_http_loopback=settings.webhook_allow_http_loopback,
    )


def job_event(job: Job) -> dict[str, Any]:
    """The event body: what ended and how; never inputs, keys or URLs with credentials."""
    return {
        "type": f"job.{job.state.value}",
        "timestamp": (job.finished_at.isoformat() if job.finished_at else None),
        "data": {
            "id": str(job.id),
            "state": job.state.value,
            "error": (
                {"code": job.error_code, "detail": job.error_detail} if job.error_code else None
            ),
            "result_url": f"/jobs/{job.id}/result" if job.output_key else None,
        },
    }


async def notify_job_ended(job: Job, settings: Settings) -> None:
    if job.webhook_url is None or not job.state.is_terminal():
        return
    if settings.webhook_secret is None:
        logger.warning("job %s: has a webhook but no webhook_secret is configured", job.id)
        return
    async with httpx.AsyncClient(follow_redirects=False) as client:
        result = await deliver(
            job.webhook_url,
            job_event(job),
            settings.webhook_secret.get_secret_value(),
            client=client,
            policy=webhook_policy(settings),
            attempts=settings.webhook_attempts,
            message_id=f"msg_{job.id.hex}_{job.state.value}",
        )
    if not result.delivered:
        logger.warning(
            "job %s: webhook not delivered after %d attempt(s): %s",
            job.id,
            result.attempts,
            result.error,
        )
