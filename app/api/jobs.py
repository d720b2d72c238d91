"""``/jobs``: submit, read, list, cancel, delete, download the result."""

import mimetypes
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from app.api.deps import (
    CurrentIdentity,
    JobServiceDep,
    PurgeableOwner,
    ReadableOwner,
)
from app.api.schemas import MAX_TTL_SECONDS, JobCreate, JobList, JobView, Problem
from app.errors import InvalidJobRequestError
from app.jobs.options import JobOptions
from app.jobs.service import InlineFile, JobRequest
from app.jobs.states import JobState
from app.security.context import record_job_id
from app.settings import Settings

router = APIRouter(prefix="/jobs", tags=["jobs"])

PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (401, 404, 409, 422, 429)
}
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="same key and same request: the same job; same key, other request: 409",
    ),
]
MAX_INLINE_FILES = 9
SELF_PARSED_BODIES: tuple[type[BaseModel], ...] = (JobCreate,)
"""Bodies parsed in the handler (JSON or multipart), added to the OpenAPI components."""

_MULTIPART_SCHEMA = {
    "type": "object",
    "required": ["source", "target"],
    "properties": {
        "source": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "target": {"type": "string", "format": "binary"},
        "options": {"type": "string", "description": "JobOptions as a JSON object"},
        "webhook_url": {"type": "string"},
        "ttl_seconds": {"type": "integer", "minimum": 1},
    },
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobView,
    responses={
        200: {"model": JobView, "description": "an idempotent replay: the earlier job"},
        **PROBLEMS,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/JobCreate"}},
                "multipart/form-data": {"schema": _MULTIPART_SCHEMA},
            },
        }
    },
)
async def submit_job(
    request: Request,
    *,
    identity: CurrentIdentity,
    service: JobServiceDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Submit a job (JSON referencing uploads, or multipart with small files)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        job_request = await _multipart_request(request, service.settings)
    else:
        job_request = _json_request(await request.body())
    submission = await service.submit(identity.name, job_request, idempotency_key=idempotency_key)
    record_job_id(request.scope, submission.job.id)  # for the audit line
    # Serialised here, once: returned as a model, FastAPI would validate it again first.
    return Response(
        JobView.of(submission.job).model_dump_json(),
        status_code=status.HTTP_202_ACCEPTED if submission.created else status.HTTP_200_OK,
        media_type="application/json",
        headers={"Location": f"/jobs/{submission.job.id}"},
    )


def _json_request(body: bytes) -> JobRequest:
    try:
        create = JobCreate.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from exc
    return JobRequest(
        sources=[ref.upload_id for ref in create.sources],
        target=create.target.upload_id,
        options=create.options,
        webhook_url=str(create.webhook_url) if create.webhook_url else None,
        ttl=timedelta(seconds=create.ttl_seconds) if create.ttl_seconds else None,
    )


async def _multipart_request(request: Request, settings: Settings) -> JobRequest:
    limit = settings.max_inline_upload_bytes * MAX_INLINE_FILES
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise InvalidJobRequestError("multipart job requests need a Content-Length header")
    if int(length) > limit:
        raise InvalidJobRequestError(
            f"request of {length} bytes is over the inline limit; use POST /uploads"
        )
    async with request.form(max_files=MAX_INLINE_FILES, max_fields=8) as form:
        sources = [await _inline(part, "source") for part in form.getlist("source")]
        target_parts = form.getlist("target")
        if not sources or len(target_parts) != 1:
            raise InvalidJobRequestError("send one or more 'source' files and one 'target' file")
        target = await _inline(target_parts[0], "target")
        options_text = form.get("options")
        webhook_url = form.get("webhook_url")
        ttl_text = form.get("ttl_seconds")
    try:
        options = (
            JobOptions.model_validate_json(options_text)
            if isinstance(options_text, str) and options_text
            else JobOptions()
        )
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", "options", *error["loc"])} for error in exc.errors()]
        ) from exc
    if webhook_url is not None and not isinstance(webhook_url, str):
        raise InvalidJobRequestError("webhook_url must be a text field")
    ttl = None
    if ttl_text is not None:
        if (
            not isinstance(ttl_text, str)
            or not ttl_text.isdigit()
            or not 1 <= int(ttl_text) <= MAX_TTL_SECONDS
        ):
            raise InvalidJobRequestError(
                f"ttl_seconds must be a whole number from 1 to {MAX_TTL_SECONDS}"
            )
        ttl = timedelta(seconds=int(ttl_text))
    return JobRequest(
        sources=sources, target=target, options=options, webhook_url=webhook_url, ttl=ttl
    )


async def _inline(part: object, field: str) -> InlineFile:
    if not isinstance(part, UploadFile):
        raise InvalidJobRequestError(f"'{field}' must be a file")
    data = await part.read()
    if not data:
        raise InvalidJobRequestError(f"'{field}' file {part.filename!r} is empty")
    return InlineFile(part.filename or field, data, part.content_type)


@router.get("", response_model=JobList, responses=PROBLEMS)
async def list_jobs(
    owner: ReadableOwner,
    service: JobServiceDep,
    state: JobState | None = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JobList:
    """The caller's own jobs (every caller's for an auditor), newest first."""
    page = await service.list_jobs(owner, state=state, cursor=cursor, limit=limit)
    return JobList(items=[JobView.of(job) for job in page.jobs], next_cursor=page.next_cursor)


@router.get("/{job_id}", response_model=JobView, responses=PROBLEMS)
async def get_job(job_id: uuid.UUID, owner: ReadableOwner, service: JobServiceDep) -> JobView:
    return JobView.of(await service.get(owner, job_id))


@router.post("/{job_id}/cancel", response_model=JobView, responses=PROBLEMS)
async def cancel_job(
    job_id: uuid.UUID, identity: CurrentIdentity, service: JobServiceDep
) -> JobView:
    """Cancel now if queued; a running job stops at its next frame."""
    return JobView.of(await service.cancel(identity.name, job_id))


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT, responses=PROBLEMS)
async def delete_job(job_id: uuid.UUID, owner: PurgeableOwner, service: JobServiceDep) -> None:
    """Stop the job and delete its inputs, output and record (any caller's, for an admin)."""
    await service.delete(owner, job_id)


@router.get(
    "/{job_id}/result",
    response_class=Response,
    responses={
        200: {"description": "the output file", "content": {"application/octet-stream": {}}},
        307: {"description": "redirect to a short-lived download URL"},
        410: {"model": Problem, "content": {"application/problem+json": {}}},
        **PROBLEMS,
    },
)
async def get_result(
    job_id: uuid.UUID, identity: CurrentIdentity, service: JobServiceDep
) -> Response:
    """The output: a redirect to a presigned URL, or the bytes streamed by the service."""
    job, presigned = await service.result(identity.name, job_id)
    if presigned is not None:
        return RedirectResponse(presigned.url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
    assert job.output_key is not None
    name = job.output_key.rsplit("/", 1)[-1]
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    info = await service.storage.stat(job.output_key)
    return StreamingResponse(
        service.storage.iter_bytes(job.output_key),
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{job.id}-{name}"',
            "Content-Length": str(info.size),
        },
    )
