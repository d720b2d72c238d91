"""``/uploads``: URLs for large inputs, and the local backend's own upload endpoint."""

from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter, Request, status
from starlette.exceptions import HTTPException

from app.api.deps import CurrentIdentity, JobServiceDep, SettingsDep, StorageDep
from app.api.jobs import PROBLEMS
from app.api.schemas import Problem, UploadCreate, UploadView
from app.storage.errors import ObjectTooLargeError
from app.storage.upload_token import UploadGrant

router = APIRouter(prefix="/uploads", tags=["uploads"])


@runtime_checkable
class DirectUploadTarget(Protocol):
    """A backend that receives uploads through the service (the local one)."""

    def verify_upload_token(self, token: str) -> UploadGrant: ...

    async def put_stream(self, key: str, chunks: Any, max_bytes: int) -> int: ...


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UploadView, responses=PROBLEMS)
async def create_upload(
    body: UploadCreate, identity: CurrentIdentity, service: JobServiceDep
) -> UploadView:
    """A short-lived URL to PUT one input file to; reference it in POST /jobs by id."""
    upload, presigned = await service.create_upload(
        identity.name, body.filename, body.content_type, body.size
    )
    return UploadView(
        upload_id=upload.id,
        url=presigned.url,
        method=presigned.method,
        headers=presigned.headers,
        expires_at=datetime.now(UTC) + presigned.expires_in,
    )


@router.put(
    "/{token}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        code: {"model": Problem, "content": {"application/problem+json": {}}}
        for code in (403, 404, 410, 413)
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def put_upload(
    token: str, request: Request, storage: StorageDep, settings: SettingsDep
) -> None:
    """Receive the bytes of an upload (local storage only; S3 uploads go to S3)."""
    if not isinstance(storage, DirectUploadTarget):
        raise HTTPException(404, "this storage backend takes uploads at presigned URLs")
    key, max_bytes = storage.verify_upload_token(token)[:2]
    limit = min(max_bytes, settings.max_upload_bytes)
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise ObjectTooLargeError(limit)
    await storage.put_stream(key, request.stream(), limit)
