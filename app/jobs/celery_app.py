"""The Celery application of ``enclave worker``: one task that carries only a job id.

Late acknowledgement, prefetch 1 and reject-on-worker-lost mean a message is removed from
RabbitMQ only after its job ran; a worker killed mid-job leaves it to be redelivered, and
the lease in the job row keeps two workers from running it at once.
"""

import logging
import uuid
from collections.abc import Callable
from typing import Any

from celery import Celery

from app.jobs.pipeline_entry import ProcessFile, pipeline_process_file
from app.jobs.worker import RunReport
from app.settings import Settings

RUN_JOB_TASK = "enclave.run_job"

logger = logging.getLogger(__name__)


def celery_config(settings: Settings) -> dict[str, Any]:
    """The settings that make delivery at-least-once and one job at a time per slot."""
    return {
        "broker_url": settings.broker_url.get_secret_value(),
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_default_queue": settings.job_queue,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 5,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
    }


def create_celery(
    settings: Settings,
    process_file: ProcessFile = pipeline_process_file,
    on_report: Callable[[RunReport], None] | None = None,
) -> Celery:
    """A Celery app bound to ``settings`` (never the global default app).

    ``on_report`` sees every finished delivery (the worker's metrics use it).
    """
    app = Celery("enclave", set_as_current=False)
    app.conf.update(celery_config(settings))

    @app.task(name=RUN_JOB_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
    def run_job_task(job_id: str) -> str | None:
        from app.jobs.dispatch import run_job_blocking

        try:
            report = run_job_blocking(settings, uuid.UUID(job_id), process_file)
        except Exception:
            # E.g. the job store went away while finishing. The row still holds the truth;
            # look again once this attempt's lease has run out.
            logger.exception("job %s: worker error; will look again", job_id)
            app.send_task(
                RUN_JOB_TASK, args=[job_id], countdown=settings.lease_duration.total_seconds()
            )
            return None
        if on_report is not None:
            on_report(report)
        if report.retry_in_s is not None:
            # Backoff, or another worker's live lease: look again later, with a new message.
            app.send_task(RUN_JOB_TASK, args=[job_id], countdown=report.retry_in_s)
        return None if report.state is None else report.state.value

    return app
