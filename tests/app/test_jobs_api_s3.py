"""The API on S3 storage (a real SeaweedFS): presigned upload, job, presigned download,
delete purging the objects."""

import boto3
import httpx
import pytest
from botocore.config import Config
from pydantic import SecretStr

from app.settings import StorageBackend
from tests.app.api_client import wait_until
from tests.app.conftest import running_api
from tests.app.pipeline_doubles import png_bytes

pytestmark = pytest.mark.services


@pytest.fixture
def s3_settings(api_settings, seaweedfs):
    return api_settings.model_copy(
        update={
            "storage_backend": StorageBackend.S3,
            "s3_bucket": seaweedfs.bucket,
            "s3_endpoint_url": seaweedfs.endpoint_url,
            "s3_region": seaweedfs.region,
            "s3_access_key_id": seaweedfs.access_key,
            "s3_secret_access_key": SecretStr(seaweedfs.secret_key),
            "s3_sse": "aws:kms",
            "s3_kms_key_id": seaweedfs.kms_key_id,
        }
    )


def keys_under(seaweedfs, prefix: str) -> list[str]:
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=seaweedfs.endpoint_url,
        region_name=seaweedfs.region,
        aws_access_key_id=seaweedfs.access_key,
        aws_secret_access_key=seaweedfs.secret_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    listing = client.list_objects_v2(Bucket=seaweedfs.bucket, Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents", [])]


async def test_presigned_upload_job_and_presigned_download(s3_settings, seaweedfs) -> None:
    async with running_api(s3_settings) as api, httpx.AsyncClient() as outside:
        ids = []
        for name, data in (("me.png", png_bytes(1)), ("photo.png", png_bytes(8))):
            grant = await api.post(
                "/uploads",
                json={"filename": name, "content_type": "image/png", "size": len(data)},
            )
            assert grant.status_code == 201, grant.text
            body = grant.json()
            assert body["url"].startswith(seaweedfs.endpoint_url)
            put = await outside.request(
                body["method"], body["url"], content=data, headers=body["headers"]
            )
            assert put.status_code == 200, put.text
            ids.append(body["upload_id"])
        created = await api.post(
            "/jobs", json={"sources": [{"upload_id": ids[0]}], "target": {"upload_id": ids[1]}}
        )
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        done = await wait_until(api, job_id)
        assert done["state"] == "succeeded", done
        assert keys_under(seaweedfs, f"inputs/{ids[0]}/") == []  # inputs purged at the end

        redirect = await api.get(done["output"]["url"])
        assert redirect.status_code == 307
        download = await outside.get(redirect.headers["location"])
        assert download.status_code == 200
        assert download.content == png_bytes(8)

        assert keys_under(seaweedfs, f"outputs/{job_id}/") == [f"outputs/{job_id}/result.png"]
        assert (await api.delete(f"/jobs/{job_id}")).status_code == 204
        assert keys_under(seaweedfs, f"outputs/{job_id}/") == []
