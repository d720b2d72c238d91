"""The SDK against the service on S3 storage (a real SeaweedFS): uploads go straight to the
object store with the presigned request's own headers (SSE-KMS included), and the result
comes back through the service's 307 to a presigned GET. Neither carries the client
certificate: the object store is another host with its own authorisation."""

import pytest
from enclave_client import JobState, NotFoundError
from pydantic import SecretStr

from app.settings import StorageBackend
from tests.app.pipeline_doubles import png_bytes
from tests.sdk.conftest import live_service

pytestmark = pytest.mark.services


def s3_overrides(seaweedfs) -> dict:
    return {
        "storage_backend": StorageBackend.S3,
        "s3_bucket": seaweedfs.bucket,
        "s3_endpoint_url": seaweedfs.endpoint_url,
        "s3_region": seaweedfs.region,
        "s3_access_key_id": seaweedfs.access_key,
        "s3_secret_access_key": SecretStr(seaweedfs.secret_key),
        "s3_sse": "aws:kms",
        "s3_kms_key_id": seaweedfs.kms_key_id,
    }


def test_uploads_and_download_go_to_the_object_store_directly(seaweedfs, pki, tmp_path):
    source, target = tmp_path / "me.png", tmp_path / "group.png"
    source.write_bytes(png_bytes(21, size=64))
    target.write_bytes(png_bytes(22, size=64))
    with (
        live_service(pki, tmp_path / "svc", **s3_overrides(seaweedfs)) as live,
        live.client(inline_upload_limit=0) as client,
    ):
        job = client.submit(source, target)
        done = client.wait(job, timeout=60, poll_interval=0.05)
        assert done.state is JobState.SUCCEEDED, done.error
        saved = client.download(done, tmp_path)
        client.delete(done)
        with pytest.raises(NotFoundError):
            client.download(done, tmp_path / "again.png")
    assert saved.read_bytes() == target.read_bytes()
    assert saved.name == "result.png"  # named after the object, not the query string
    routes = live.routes("alice")
    assert routes.count(("POST", "/uploads", 201)) == 2
    assert not [route for route in routes if route[1] == "/uploads/{token}"]  # not via the API
    assert ("GET", "/jobs/{job_id}/result", 307) in routes
