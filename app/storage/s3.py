"""S3 storage on boto3: server-side encryption on every write, presigned PUT/GET, multipart.

boto3 is synchronous; every call runs in a worker thread (``asyncio.to_thread``) so the
event loop never blocks. botocore retries are kept small because the job service owns the
retry policy: it retries ``StorageUnavailableError`` with its own backoff. Error messages
name the operation, key and S3 error code only, never a URL (presigned query strings are
credentials).
"""

import asyncio
import mimetypes
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import boto3
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from s3transfer.exceptions import RetriesExceededError

from app.storage.base import ObjectData, ObjectInfo, PresignedRequest
from app.storage.errors import (
    ObjectNotFoundError,
    StorageAccessDeniedError,
    StorageError,
    StorageUnavailableError,
)
from app.storage.keys import validate_key, validate_prefix

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
S3_MIN_PART_SIZE = 5 * MiB
STREAM_CHUNK_SIZE = 1 * MiB
_DELETE_BATCH = 1000  # the DeleteObjects maximum

ServerSideEncryption = Literal["aws:kms", "AES256"]
_T = TypeVar("_T")

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_DENIED_CODES = frozenset(
    {"403", "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "ExpiredToken"}
)
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "503", "500"}
)


class S3Storage:
    """Objects in one S3 bucket (AWS, or any SigV4-compatible server via ``endpoint_url``)."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        sse: ServerSideEncryption = "aws:kms",
        kms_key_id: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        multipart_threshold: int = 8 * MiB,
        presign_expiry: timedelta = timedelta(seconds=300),
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        max_attempts: int = 2,
        client_factory: Callable[[], "S3Client"] | None = None,
    ) -> None:
        if sse not in ("aws:kms", "AES256"):
            raise ValueError(f"sse must be 'aws:kms' or 'AES256', not {sse!r}")
        if kms_key_id and sse != "aws:kms":
            raise ValueError("kms_key_id only applies to sse='aws:kms'")
        if multipart_threshold < S3_MIN_PART_SIZE:
            raise ValueError(f"multipart_threshold must be at least {S3_MIN_PART_SIZE} bytes")
        self._bucket = bucket
        self._sse_args: dict[str, str] = {"ServerSideEncryption": sse}
        if kms_key_id:
            self._sse_args["SSEKMSKeyId"] = kms_key_id
        self._max_presign_expiry = presign_expiry
        self._transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_threshold,
            max_concurrency=4,
        )
        factory = client_factory or (
            lambda: _build_client(
                endpoint_url=endpoint_url,
                region=region,
                access_key=access_key,
                secret_key=secret_key,
                connect_timeout_s=connect_timeout_s,
                read_timeout_s=read_timeout_s,
                max_attempts=max_attempts,
            )
        )
        self._client = factory()

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def sse_headers(self) -> dict[str, str]:
        """The encryption headers every write carries (and every presigned PUT must send)."""
        headers = {"x-amz-server-side-encryption": self._sse_args["ServerSideEncryption"]}
        if "SSEKMSKeyId" in self._sse_args:
            headers["x-amz-server-side-encryption-aws-kms-key-id"] = self._sse_args["SSEKMSKeyId"]
        return headers

    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        """Upload a file; multipart above the threshold, every part encrypted."""
        validate_key(key)
        extra_args = self._write_args(key, content_type)

        def upload() -> None:
            with create_transfer_manager(self._client, self._transfer_config) as manager:
                manager.upload(str(path), self._bucket, key, extra_args=extra_args).result()

        await self._run(upload, "upload", key)

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        validate_key(key)
        args = self._write_args(key, content_type)
        await self._run(
            lambda: self._client.put_object(Bucket=self._bucket, Key=key, Body=data, **args),
            "put",
            key,
        )

    async def put_many(self, objects: Sequence[ObjectData]) -> None:
        """Concurrent puts; every one settles before the first error is raised."""
        puts = (self.put_bytes(item.key, item.data, item.content_type) for item in objects)
        for outcome in await asyncio.gather(*puts, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    async def get_file(self, key: str, path: Path) -> None:
        """Download to ``path`` via a temporary file beside it, so it is whole or absent."""
        validate_key(key)

        def download() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            os.close(fd)
            temp = Path(temp_name)
            try:
                with create_transfer_manager(self._client, self._transfer_config) as manager:
                    manager.download(self._bucket, key, temp_name).result()
                temp.replace(path)
            finally:
                temp.unlink(missing_ok=True)

        await self._run(download, "download", key)

    async def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        head = await self._run(
            lambda: self._client.head_object(Bucket=self._bucket, Key=key), "stat", key
        )
        return ObjectInfo(key=key, size=head["ContentLength"], content_type=head.get("ContentType"))

    async def exists(self, key: str) -> bool:
        """Whether ``key`` exists, by a one-key listing under it.

        Not HeadObject: a role allowed to list only under its own prefixes (as the deployed
        ones are) gets 403, not 404, for a missing key, which says nothing about existence.
        """
        validate_key(key)

        def first_key() -> str | None:
            page = self._client.list_objects_v2(Bucket=self._bucket, Prefix=key, MaxKeys=1)
            contents = page.get("Contents") or []
            return str(contents[0]["Key"]) if contents else None

        return await self._run(first_key, "exists", key) == key

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (paginated listing, batched deletes)."""
        validate_prefix(prefix)

        def delete() -> int:
            deleted = 0
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                keys = [item["Key"] for item in page.get("Contents", []) if "Key" in item]
                for start in range(0, len(keys), _DELETE_BATCH):
                    batch = keys[start : start + _DELETE_BATCH]
                    result = self._client.delete_objects(
                        Bucket=self._bucket,
                        Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                    )
                    if errors := result.get("Errors"):
                        first = errors[0]
                        raise StorageError(
                            f"S3 refused to delete {len(errors)} object(s) under {prefix!r}: "
                            f"{first.get('Code', 'unknown')} for {first.get('Key', '?')!r}"
                        )
                    deleted += len(batch)
            return deleted

        return await self._run(delete, "delete", prefix)

    async def iter_bytes(self, key: str) -> AsyncIterator[bytes]:
        """Stream an object in chunks, each read in a worker thread."""
        validate_key(key)
        response = await self._run(
            lambda: self._client.get_object(Bucket=self._bucket, Key=key), "get", key
        )
        body = response["Body"]
        try:
            while chunk := await self._run(lambda: body.read(STREAM_CHUNK_SIZE), "read", key):
                yield chunk
        finally:
            await asyncio.to_thread(body.close)

    async def presign_put(
        self, key: str, content_type: str, max_bytes: int, expires_in: timedelta
    ) -> PresignedRequest:
        """A presigned PUT whose signature covers Content-Type and the SSE headers.

        The client must send exactly the returned headers, or S3 refuses the signature. A
        presigned PUT cannot enforce ``max_bytes``: callers check ``stat(key).size`` after
        the upload and reject (and delete) anything larger.
        """
        validate_key(key)
        expiry = self._clamp(expires_in)
        params: dict[str, Any] = {
            "Bucket": self._bucket,
            "Key": key,
            "ContentType": content_type,
            **self._sse_args,
        }
        url = await self._run(
            lambda: self._client.generate_presigned_url(
                "put_object",
                Params=params,
                ExpiresIn=int(expiry.total_seconds()),
                HttpMethod="PUT",
            ),
            "presign",
            key,
        )
        return PresignedRequest(
            url=url,
            method="PUT",
            headers={"Content-Type": content_type, **self.sse_headers},
            expires_in=expiry,
        )

    async def presign_get(self, key: str, expires_in: timedelta) -> PresignedRequest | None:
        """A presigned GET for one object, valid for at most the configured expiry."""
        validate_key(key)
        expiry = self._clamp(expires_in)
        url = await self._run(
            lambda: self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self._bucket, "Key": key},
                ExpiresIn=int(expiry.total_seconds()),
                HttpMethod="GET",
            ),
            "presign",
            key,
        )
        return PresignedRequest(url=url, method="GET", headers={}, expires_in=expiry)

    async def check(self) -> None:
        """Raise ``StorageUnavailableError`` unless the bucket answers to our credentials.

        A prefixed one-key listing rather than HeadBucket: the deployed roles may list only
        under their own prefixes (``inputs/`` is common to the API and the workers).
        """

        def list_one() -> object:
            return self._client.list_objects_v2(Bucket=self._bucket, Prefix="inputs/", MaxKeys=1)

        try:
            await self._run(list_one, "check", "")
        except StorageUnavailableError:
            raise
        except StorageError as exc:
            raise StorageUnavailableError(f"bucket {self._bucket!r} is not usable: {exc}") from exc

    def _write_args(self, key: str, content_type: str | None) -> dict[str, Any]:
        args: dict[str, Any] = dict(self._sse_args)
        # Like the local backend, fall back to the type the key's extension implies.
        content_type = content_type or mimetypes.guess_type(key)[0]
        if content_type:
            args["ContentType"] = content_type
        return args

    def _clamp(self, expires_in: timedelta) -> timedelta:
        if expires_in <= timedelta(0):
            raise ValueError("expires_in must be positive")
        return min(expires_in, self._max_presign_expiry)

    async def _run(self, call: Callable[[], _T], operation: str, key: str) -> _T:
        try:
            return await asyncio.to_thread(call)
        except (BotoCoreError, ClientError, RetriesExceededError) as exc:
            raise _translate(exc, operation, key) from exc


def _build_client(
    *,
    endpoint_url: str | None,
    region: str,
    access_key: str | None,
    secret_key: str | None,
    connect_timeout_s: float,
    read_timeout_s: float,
    max_attempts: int,
) -> "S3Client":
    config = Config(
        signature_version="s3v4",
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        retries={"max_attempts": max_attempts, "mode": "standard"},
        # Path-style for custom endpoints (SeaweedFS, MinIO): no wildcard DNS needed.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )
    # A private session: boto3's default session is module-global state.
    session = boto3.session.Session(
        aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
    )
    return session.client("s3", endpoint_url=endpoint_url, config=config)


def _translate(exc: Exception, operation: str, key: str) -> StorageError:
    """Map a botocore/s3transfer failure to the storage error tree (no URLs in messages)."""
    target = f" of {key!r}" if key else ""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        detail = f"S3 {operation}{target} failed: {code or 'error'} (HTTP {status or '?'})"
        if code in _NOT_FOUND_CODES or (status == 404 and code != "NoSuchBucket"):
            return ObjectNotFoundError(key)
        if code in _DENIED_CODES or status == 403:
            return StorageAccessDeniedError(detail)
        if code in _TRANSIENT_CODES or status >= 500:
            return StorageUnavailableError(detail)
        return StorageError(detail)
    if isinstance(exc, BotoConnectionError | HTTPClientError | RetriesExceededError):
        return StorageUnavailableError(
            f"S3 {operation}{target} failed: endpoint unreachable ({type(exc).__name__})"
        )
    return StorageError(f"S3 {operation}{target} failed: {type(exc).__name__}")
