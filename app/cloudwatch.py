"""The autoscaling signal for AWS: ``enclave_queue_depth`` published to CloudWatch.

The Terraform stack scales GPU workers on this metric (namespace ``metrics_namespace``,
dimension ``Stack``), and the API hosts' role may write that namespace only. Prometheus
scrapes the same number from ``/metrics``; this is for installations without a scraper
in the loop.
"""

import asyncio
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.jobs import store
from app.jobs.states import JobState
from app.settings import Settings

logger = logging.getLogger(__name__)

METRIC_NAME = "enclave_queue_depth"


class QueueDepthPublisher:
    """Puts the number of queued jobs into one CloudWatch metric."""

    def __init__(self, client: Any, namespace: str, stack: str) -> None:
        self._client = client
        self._namespace = namespace
        self._stack = stack

    def publish(self, depth: int) -> None:
        self._client.put_metric_data(
            Namespace=self._namespace,
            MetricData=[
                {
                    "MetricName": METRIC_NAME,
                    "Dimensions": [{"Name": "Stack", "Value": self._stack}],
                    "Value": float(depth),
                    "Unit": "Count",
                }
            ],
        )


def build_publisher(settings: Settings) -> QueueDepthPublisher | None:
    """A publisher when ``cloudwatch_namespace`` is set, else ``None``."""
    if settings.cloudwatch_namespace is None:
        return None
    import boto3

    client = boto3.client("cloudwatch", region_name=settings.s3_region)
    return QueueDepthPublisher(client, settings.cloudwatch_namespace, settings.cloudwatch_stack)


async def publish_queue_depth(
    sessions: async_sessionmaker[AsyncSession], publisher: QueueDepthPublisher
) -> int:
    """Count queued jobs and publish the number; returns it."""
    async with sessions() as session:
        depth = (await store.count_jobs_by_state(session))[JobState.QUEUED]
    await asyncio.to_thread(publisher.publish, depth)
    return depth


async def publish_forever(
    sessions: async_sessionmaker[AsyncSession], publisher: QueueDepthPublisher, interval_s: float
) -> None:
    """Publish on a timer; a failed put is logged and the next one tried."""
    while True:
        try:
            await publish_queue_depth(sessions, publisher)
        except Exception:
            logger.exception("could not publish %s to CloudWatch", METRIC_NAME)
        await asyncio.sleep(interval_s)
