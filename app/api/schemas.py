"""Request and response bodies of the API (pydantic), separate from the SQLAlchemy models."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from app.jobs.models import Job
from app.jobs.options import JobOptions
from app.jobs.states import JobState


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | None = None


MAX_TTL_SECONDS = 366 * 24 * 3600  # a year; the service's job_ttl caps it further anyway

TtlSeconds = Annotated[
    int | None,
    Field(
        gt=0,
        le=MAX_TTL_SECONDS,
        description="fail the job as expired if it has not started within this many seconds "
        "(capped by the service's job_ttl)",
    ),
]


class InputRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upload_id: uuid.UUID = Field(description="an id returned by POST /uploads")


class JobCreate(BaseModel):
    """A job whose inputs were uploaded with ``POST /uploads``."""

    model_config = ConfigDict(extra="forbid")

    sources: Annotated[list[InputRef], Field(min_length=1, max_length=8)]
    target: InputRef
    options: JobOptions = Field(default_factory=JobOptions)
    webhook_url: Annotated[AnyHttpUrl, Field(max_length=2048)] | None = None
    ttl_seconds: TtlSeconds = None


class JobError(BaseModel):
    code: str
    detail: str | None


class JobOutput(BaseModel):
    url: str = Field(description="GET this to download the result")


class JobView(BaseModel):
    id: uuid.UUID
    state: JobState
    progress: float = Field(ge=0.0, le=1.0)
    stage: str | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    created_at: datetime
    expires_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    timings: dict[str, float] | None = Field(description="seconds spent per stage")
    summary: dict[str, Any] | None
    error: JobError | None
    output: JobOutput | None
    options: JobOptions

    @classmethod
    def of(cls, job: Job) -> "JobView":
        error = (
            JobError(code=job.error_code, detail=job.error_detail)
            if job.error_code is not None
            else None
        )
        output = (
            JobOutput(url=f"/jobs/{job.id}/result")
            if job.state is JobState.SUCCEEDED and job.outputs_purged_at is None
            else None
        )
        return cls(
            id=job.id,
            state=job.state,
            progress=job.progress,
            stage=job.stage,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            cancel_requested=job.cancel_requested,
            created_at=job.created_at,
            expires_at=job.expires_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            timings=job.timings,
            summary=job.summary,
            error=error,
            output=output,
            options=JobOptions.model_validate(job.options),
        )


class JobList(BaseModel):
    items: list[JobView]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class UploadCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: Annotated[str, Field(min_length=1, max_length=255)]
    content_type: Annotated[str, Field(pattern=r"^(image|video)/[a-z0-9.+-]{1,64}$")]
    size: Annotated[int, Field(gt=0, description="exact size in bytes")]


class UploadView(BaseModel):
    upload_id: uuid.UUID
    url: str
    method: str
    headers: dict[str, str]
    expires_at: datetime


class CompareView(BaseModel):
    similarity: float
    same_person: bool
    threshold: float
    faces_a: int
    faces_b: int


class Health(BaseModel):
    status: str


class ModelLicence(BaseModel):
    """A model the workers may load, and the licence it is under."""

    name: str
    task: str
    kind: str
    licence: str
    commercial_use: bool
    bundled: bool
    loadable: bool
    """False for a non-commercial model without the operator's acknowledgement."""


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]
    models: list[ModelLicence] = []
