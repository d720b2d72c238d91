"""Typed results (``Job``, ``JobPage``, ``CompareResult``, ``Upload``) and typed job options.

Results are frozen dataclasses read from the API's JSON; fields the service adds later are
ignored, so an older client keeps working against a newer service.
"""

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from enclave_client._errors import UnexpectedResponseError


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    def is_terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED)


@dataclass(frozen=True)
class JobError:
    """Why a job failed: a stable ``code`` (``bad_input``, ``expired``, ...) and a detail."""

    code: str
    detail: str | None


@dataclass(frozen=True)
class Job:
    """One job as the service last reported it."""

    id: str
    state: JobState
    progress: float  # 0..1
    stage: str | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    created_at: datetime
    expires_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    timings: Mapping[str, float]  # seconds per pipeline stage
    summary: Mapping[str, Any] | None
    error: JobError | None
    output_url: str | None  # a path on the service; ``download`` fetches it
    options: Mapping[str, Any]

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal()

    @classmethod
    def from_json(cls, body: object) -> "Job":
        body = _object(body, "a job")
        try:
            error = body.get("error")
            output = body.get("output")
            return cls(
                id=str(body["id"]),
                state=JobState(body["state"]),
                progress=float(body["progress"]),
                stage=body.get("stage"),
                attempts=int(body.get("attempts", 0)),
                max_attempts=int(body.get("max_attempts", 0)),
                cancel_requested=bool(body.get("cancel_requested", False)),
                created_at=_datetime(body["created_at"]),
                expires_at=_optional_datetime(body.get("expires_at")),
                started_at=_optional_datetime(body.get("started_at")),
                finished_at=_optional_datetime(body.get("finished_at")),
                timings=dict(body.get("timings") or {}),
                summary=body.get("summary"),
                error=JobError(str(error["code"]), error.get("detail")) if error else None,
                output_url=str(output["url"]) if output else None,
                options=dict(body.get("options") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UnexpectedResponseError(f"not a job: {exc!r}") from exc


@dataclass(frozen=True)
class JobPage:
    """One page of ``GET /jobs``; pass ``next_cursor`` back for the next (``None``: last)."""

    items: list[Job]
    next_cursor: str | None

    def __iter__(self) -> Iterator[Job]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def from_json(cls, body: object) -> "JobPage":
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise UnexpectedResponseError("not a page of jobs")
        cursor = body.get("next_cursor")
        return cls([Job.from_json(item) for item in body["items"]], cursor and str(cursor))


@dataclass(frozen=True)
class CompareResult:
    """Identity similarity of the largest face in each image, and the service's decision."""

    similarity: float
    same_person: bool
    threshold: float
    faces_a: int
    faces_b: int

    @classmethod
    def from_json(cls, body: object) -> "CompareResult":
        body = _object(body, "a comparison")
        try:
            return cls(
                similarity=float(body["similarity"]),
                same_person=bool(body["same_person"]),
                threshold=float(body["threshold"]),
                faces_a=int(body["faces_a"]),
                faces_b=int(body["faces_b"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UnexpectedResponseError(f"not a comparison: {exc!r}") from exc


@dataclass(frozen=True)
class Upload:
    """An input already sent with ``POST /uploads``; pass it to ``submit`` instead of a path
    (and pass the same one again to replay a submission under its Idempotency-Key)."""

    upload_id: str
    filename: str
    size: int


FrameProcessor = Literal["face_swapper", "face_enhancer", "frame_enhancer"]
FaceSelectorMode = Literal["one", "many", "reference"]
FaceSelectorOrder = Literal[
    "left-right",
    "right-left",
    "top-bottom",
    "bottom-top",
    "large-small",
    "small-large",
    "best-worst",
]
MaskType = Literal["box", "region"]


@dataclass(frozen=True)
class JobOptions:
    """Processing options: the names of ``enclave run``'s flags. ``None`` leaves a field to
    the service's default; the service validates every value."""

    frame_processors: tuple[FrameProcessor, ...] | None = None
    face_detector_model: str | None = None
    face_detector_score: float | None = None
    face_detector_interval: int | None = None
    face_recognizer_model: str | None = None
    face_swapper_model: str | None = None
    face_enhancer_model: str | None = None
    frame_enhancer_model: str | None = None
    frame_enhancer_scale: Literal[1, 2, 3, 4] | None = None
    face_selector_mode: FaceSelectorMode | None = None
    face_selector_order: FaceSelectorOrder | None = None
    reference_face_position: int | None = None
    reference_face_distance: float | None = None
    face_mask_types: tuple[MaskType, ...] | None = None
    face_mask_blur: float | None = None
    face_mask_padding: tuple[int, int, int, int] | None = None
    trim_frame_start: int | None = None
    trim_frame_end: int | None = None
    keep_fps: bool | None = None
    output_video_encoder: str | None = None
    output_video_quality: int | None = None
    output_video_preset: str | None = None
    output_image_quality: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Options this client version does not know by name, sent as they are."""

    def to_json(self) -> dict[str, Any]:
        """The set fields as the API's ``options`` object."""
        document: dict[str, Any] = {}
        for option in fields(self):
            value = getattr(self, option.name)
            if option.name == "extra" or value is None:
                continue
            document[option.name] = list(value) if isinstance(value, tuple) else value
        return {**document, **self.extra}

    @classmethod
    def names(cls) -> frozenset[str]:
        return frozenset(option.name for option in fields(cls) if option.name != "extra")


def options_json(options: "JobOptions | Mapping[str, Any] | None") -> dict[str, Any]:
    """``options`` as sent in a job request (a mapping is sent as given)."""
    if options is None:
        return {}
    if isinstance(options, JobOptions):
        return options.to_json()
    return {
        name: list(value) if isinstance(value, tuple) else value for name, value in options.items()
    }


def _object(body: object, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise UnexpectedResponseError(f"expected {what} (a JSON object), got {type(body).__name__}")
    return body


def _datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 time, got {value!r}")
    return datetime.fromisoformat(value)


def _optional_datetime(value: object) -> datetime | None:
    return None if value is None else _datetime(value)


JobRef = Job | str | uuid.UUID
"""A job named by its ``Job``, or its id as a string or UUID."""


def job_id_of(job: JobRef) -> str:
    """The id of a job given as a ``Job``, a string or a UUID (checked, so a path stays a path)."""
    raw = job.id if isinstance(job, Job) else str(job)
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ValueError(f"{raw!r} is not a job id") from None
