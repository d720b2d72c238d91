"""The S3 backend against a real SeaweedFS (SigV4, presigned URLs, multipart, SSE).

Finding on SSE (SeaweedFS 4.x, ``weed mini``): without a KMS, SeaweedFS answers a PUT with
``x-amz-server-side-encryption: aws:kms`` with HTTP 500 ("KMS is not configured"), while
``AES256`` (SSE-S3) works out of the box. With the local KMS provider enabled in the S3
config (``tests/seaweed.py``), SSE-KMS works for real with the provider's built-in key
``alias/seaweedfs-default``: HEAD reports ``aws:kms`` and the key id, and GET decrypts. So
both modes are tested end to end here, not only at the request level.
"""

import asyncio
import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from app.storage.base import ObjectData, Storage
from app.storage.errors import (
    InvalidKeyError,
    ObjectNotFoundError,
    StorageAccessDeniedError,
    StorageUnavailableError,
)
from app.storage.keys import job_key, job_prefix
from app.storage.s3 import MiB, S3Storage
from tests.seaweed import SeaweedS3, free_port

pytestmark = pytest.mark.services


def raw_client(server: SeaweedS3, *, secret_key: str | None = None):
    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=secret_key or server.secret_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


class RecordingClient:
    """A real boto3 client whose outgoing operations are recorded via botocore events."""

    def __init__(self, server: SeaweedS3) -> None:
        self.client = raw_client(server)
        self.operations: list[str] = []
        self.client.meta.events.register("before-call.s3", self._record)

    def _record(self, model, **_kwargs) -> None:
        self.operations.append(model.name)

    def __call__(self):
        return self.client


def make_storage(server: SeaweedS3, **overrides) -> S3Storage:
    options: dict[str, Any] = {
        "endpoint_url": server.endpoint_url,
        "region": server.region,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "sse": "aws:kms",
        "kms_key_id": server.kms_key_id,
        "multipart_threshold": 5 * MiB,
    }
    options.update(overrides)
    return S3Storage(server.bucket, **options)


@pytest.fixture
def storage(seaweedfs: SeaweedS3) -> S3Storage:
    return make_storage(seaweedfs)


@pytest.fixture
def job() -> uuid.UUID:
    return uuid.uuid4()


def test_satisfies_the_storage_protocol(storage: S3Storage):
    backend: Storage = storage
    assert backend is storage


async def test_round_trip_with_sse_kms(storage: S3Storage, seaweedfs: SeaweedS3, job, tmp_path):
    key = job_key(job, "inputs", "t1.jpg")
    payload = b"\xff\xd8 not really a jpeg"
    await storage.put_bytes(key, payload, "image/jpeg")

    assert await storage.exists(key)
    info = await storage.stat(key)
    assert (info.key, info.size, info.content_type) == (key, len(payload), "image/jpeg")
    head = raw_client(seaweedfs).head_object(Bucket=seaweedfs.bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"]

    target = tmp_path / "down" / "t1.jpg"
    await storage.get_file(key, target)
    assert target.read_bytes() == payload
    assert b"".join([c async for c in storage.iter_bytes(key)]) == payload


async def test_put_many_stores_each_object_encrypted(storage: S3Storage, seaweedfs: SeaweedS3, job):
    objects = [
        ObjectData(job_key(job, "inputs", "0-face.png"), b"source", "image/png"),
        ObjectData(job_key(job, "inputs", "1-face.png"), b"target", "image/png"),
    ]
    await storage.put_many(objects)
    for item in objects:
        head = raw_client(seaweedfs).head_object(Bucket=seaweedfs.bucket, Key=item.key)
        assert (head["ServerSideEncryption"], head["ContentType"]) == ("aws:kms", "image/png")
        assert b"".join([c async for c in storage.iter_bytes(item.key)]) == item.data


async def test_round_trip_with_sse_s3(seaweedfs: SeaweedS3, job):
    storage = make_storage(seaweedfs, sse="AES256", kms_key_id=None)
    key = job_key(job, "outputs", "result.png")
    await storage.put_bytes(key, b"png", "image/png")
    head = raw_client(seaweedfs).head_object(Bucket=seaweedfs.bucket, Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    assert b"".join([c async for c in storage.iter_bytes(key)]) == b"png"


async def test_missing_objects_raise_not_found(storage: S3Storage, job, tmp_path):
    key = job_key(job, "outputs", "never-written.png")
    assert not await storage.exists(key)
    with pytest.raises(ObjectNotFoundError):
        await storage.stat(key)
    with pytest.raises(ObjectNotFoundError):
        await storage.get_file(key, tmp_path / "x.png")
    with pytest.raises(ObjectNotFoundError):
        [c async for c in storage.iter_bytes(key)]
    assert list(tmp_path.iterdir()) == []


async def test_delete_prefix_removes_only_that_job(storage: S3Storage, job):
    other = uuid.uuid4()
    for name in ("a.jpg", "b.jpg", "c.mp4"):
        await storage.put_bytes(job_key(job, "inputs", name), b"x")
    await storage.put_bytes(job_key(other, "inputs", "a.jpg"), b"keep")

    assert await storage.delete_prefix(job_prefix(job, "inputs")) == 3
    for name in ("a.jpg", "b.jpg", "c.mp4"):
        assert not await storage.exists(job_key(job, "inputs", name))
    assert await storage.exists(job_key(other, "inputs", "a.jpg"))
    assert await storage.delete_prefix(job_prefix(job, "inputs")) == 0


async def test_multipart_upload_is_byte_exact(seaweedfs: SeaweedS3, job, tmp_path: Path):
    recorder = RecordingClient(seaweedfs)
    storage = make_storage(seaweedfs, client_factory=recorder)
    source = tmp_path / "video.mp4"
    payload = os.urandom(11 * MiB + 12345)
    source.write_bytes(payload)
    key = job_key(job, "outputs", "video.mp4")

    await storage.put_file(key, source, "video/mp4")

    assert recorder.operations.count("UploadPart") == 3
    assert "CompleteMultipartUpload" in recorder.operations
    assert (await storage.stat(key)).size == len(payload)
    downloaded = tmp_path / "back.mp4"
    await storage.get_file(key, downloaded)
    assert downloaded.read_bytes() == payload
    head = raw_client(seaweedfs).head_object(Bucket=seaweedfs.bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"


async def test_small_files_are_a_single_put(seaweedfs: SeaweedS3, job, tmp_path: Path):
    recorder = RecordingClient(seaweedfs)
    storage = make_storage(seaweedfs, client_factory=recorder)
    source = tmp_path / "t1.jpg"
    source.write_bytes(b"j" * 1000)
    await storage.put_file(job_key(job, "inputs", "t1.jpg"), source, "image/jpeg")
    assert "UploadPart" not in recorder.operations
    assert "PutObject" in recorder.operations


async def test_content_type_defaults_to_the_extension(storage: S3Storage, job, tmp_path: Path):
    source = tmp_path / "result.mp4"
    source.write_bytes(b"v" * 100)
    await storage.put_file(job_key(job, "outputs", "result.mp4"), source)
    await storage.put_bytes(job_key(job, "outputs", "result.png"), b"png")
    assert (await storage.stat(job_key(job, "outputs", "result.mp4"))).content_type == "video/mp4"
    assert (await storage.stat(job_key(job, "outputs", "result.png"))).content_type == "image/png"


async def test_presigned_put_then_stat(storage: S3Storage, job):
    key = job_key(job, "inputs", "upload.jpg")
    request = await storage.presign_put(key, "image/jpeg", 10_000, timedelta(minutes=5))
    assert request.method == "PUT"
    assert request.headers == {
        "Content-Type": "image/jpeg",
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id": storage.sse_headers[
            "x-amz-server-side-encryption-aws-kms-key-id"
        ],
    }
    signed = request.url.split("X-Amz-SignedHeaders=")[1].split("&")[0]
    assert "content-type" in signed and "x-amz-server-side-encryption" in signed

    async with httpx.AsyncClient() as client:
        response = await client.put(request.url, content=b"uploaded!", headers=request.headers)
    assert response.status_code == 200, response.text
    info = await storage.stat(key)
    assert (info.size, info.content_type) == (9, "image/jpeg")


async def test_presigned_put_requires_the_signed_headers(storage: S3Storage, job):
    key = job_key(job, "inputs", "upload.jpg")
    request = await storage.presign_put(key, "image/jpeg", 10_000, timedelta(minutes=5))
    without_sse = {"Content-Type": "image/jpeg"}
    async with httpx.AsyncClient() as client:
        response = await client.put(request.url, content=b"x", headers=without_sse)
        other_type = {**request.headers, "Content-Type": "text/html"}
        response_type = await client.put(request.url, content=b"x", headers=other_type)
    assert response.status_code == 403
    assert response_type.status_code == 403
    assert not await storage.exists(key)


async def test_presigned_get_downloads(storage: S3Storage, job):
    key = job_key(job, "outputs", "result.png")
    await storage.put_bytes(key, b"result bytes", "image/png")
    request = await storage.presign_get(key, timedelta(minutes=5))
    assert request is not None and request.method == "GET"
    async with httpx.AsyncClient() as client:
        response = await client.get(request.url)
    assert response.status_code == 200
    assert response.content == b"result bytes"


async def test_presign_expiry_is_capped(seaweedfs: SeaweedS3, job):
    storage = make_storage(seaweedfs, presign_expiry=timedelta(seconds=60))
    request = await storage.presign_get(job_key(job, "outputs", "r.png"), timedelta(hours=12))
    assert request is not None
    assert request.expires_in == timedelta(seconds=60)
    assert "X-Amz-Expires=60&" in request.url


async def test_expired_presigned_url_is_refused(storage: S3Storage, job):
    key = job_key(job, "inputs", "late.jpg")
    request = await storage.presign_put(key, "image/jpeg", 100, timedelta(seconds=1))
    await asyncio.sleep(2.5)
    async with httpx.AsyncClient() as client:
        response = await client.put(request.url, content=b"late", headers=request.headers)
    assert response.status_code == 403
    assert not await storage.exists(key)


async def test_wrong_credentials_are_refused(seaweedfs: SeaweedS3, job):
    storage = make_storage(seaweedfs, secret_key="not-the-secret")
    with pytest.raises(StorageAccessDeniedError):
        await storage.put_bytes(job_key(job, "inputs", "a.jpg"), b"x")
    with pytest.raises(StorageUnavailableError, match="not usable"):
        await storage.check()
    assert not await make_storage(seaweedfs).exists(job_key(job, "inputs", "a.jpg"))


async def test_check_passes_when_the_bucket_answers(storage: S3Storage):
    await storage.check()


async def test_server_down_is_transient(seaweedfs: SeaweedS3, job, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    storage = make_storage(seaweedfs, endpoint_url=closed, max_attempts=1, connect_timeout_s=1)
    key = job_key(job, "inputs", "a.jpg")
    with pytest.raises(StorageUnavailableError, match="unreachable") as caught:
        await storage.put_bytes(key, b"x")
    assert closed not in str(caught.value)
    with pytest.raises(StorageUnavailableError):
        await storage.stat(key)
    with pytest.raises(StorageUnavailableError):
        await storage.get_file(key, tmp_path / "a.jpg")
    with pytest.raises(StorageUnavailableError):
        await storage.check()


@pytest.mark.parametrize("key", ["../x", "inputs/../../x", "/abs", "a//b", "a\\b", "a/\x00"])
async def test_unchecked_keys_never_reach_s3(seaweedfs: SeaweedS3, key: str):
    recorder = RecordingClient(seaweedfs)
    storage = make_storage(seaweedfs, client_factory=recorder)
    with pytest.raises(InvalidKeyError):
        await storage.put_bytes(key, b"x")
    with pytest.raises(InvalidKeyError):
        await storage.presign_put(key, "image/jpeg", 10, timedelta(seconds=60))
    with pytest.raises(InvalidKeyError):
        await storage.delete_prefix(key)
    assert recorder.operations == []


async def test_hostile_upload_names_stay_inside_the_job(storage: S3Storage, seaweedfs, job):
    for name in ["../../outputs/other/result.png", "..\\..\\x.jpg", ".env", "a b?c=d&e.jpg"]:
        await storage.put_bytes(job_key(job, "inputs", name), b"x")
    listing = raw_client(seaweedfs).list_objects_v2(Bucket=seaweedfs.bucket, Prefix="")
    keys = [item["Key"] for item in listing.get("Contents", [])]
    mine = [k for k in keys if str(job) in k]
    assert len(mine) == 4
    assert all(k.startswith(f"inputs/{job}/") and k.count("/") == 2 for k in mine)
