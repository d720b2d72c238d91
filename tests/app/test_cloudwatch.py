"""The autoscaling signal reaches CloudWatch in the shape the Terraform policy reads.

CloudWatch cannot run here, so its API is the one thing stubbed (botocore's Stubber checks
every parameter of the call against the real service model); the job store is real.
"""

import boto3
from botocore.stub import Stubber

from app.cloudwatch import QueueDepthPublisher, build_publisher, publish_queue_depth
from app.jobs.states import JobState
from tests.app.test_job_store import make_job


def expected_put(depth: float) -> dict:
    return {
        "Namespace": "Enclave",
        "MetricData": [
            {
                "MetricName": "enclave_queue_depth",
                "Dimensions": [{"Name": "Stack", "Value": "prod"}],
                "Value": depth,
                "Unit": "Count",
            }
        ],
    }


async def test_queue_depth_is_published_with_the_stack_dimension(session_factory) -> None:
    async with session_factory.begin() as session:
        session.add_all([make_job(), make_job(), make_job(state=JobState.RUNNING)])
    client = boto3.client(
        "cloudwatch", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    publisher = QueueDepthPublisher(client, "Enclave", "prod")
    with Stubber(client) as stub:
        stub.add_response("put_metric_data", {}, expected_put(2.0))
        assert await publish_queue_depth(session_factory, publisher) == 2
        stub.assert_no_pending_responses()


def test_no_publisher_unless_a_namespace_is_configured(api_settings) -> None:
    assert build_publisher(api_settings) is None
    configured = api_settings.model_copy(
        update={"cloudwatch_namespace": "Enclave", "s3_region": "eu-west-1"}
    )
    assert isinstance(build_publisher(configured), QueueDepthPublisher)
