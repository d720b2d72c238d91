"""The API's conversation as data, shared by the sync and async clients: how a submission
is sent (inline multipart or through ``POST /uploads``), how error responses become
exceptions, where presigned URLs point. Nothing here does I/O on the network.
"""

import errno
import json
import mimetypes
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from enclave_client._errors import (
    ERRORS_BY_STATUS,
    EnclaveAPIError,
    EnclaveConnectionError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
)
from enclave_client._models import JobOptions, JobRef, Upload, job_id_of, options_json
from enclave_client._version import __version__

Input = str | os.PathLike[str] | Upload
"""A job input: a local file, or one already uploaded with ``upload``."""

DEFAULT_INLINE_LIMIT = 8 * 1024 * 1024
# Types Python's mimetypes table lacks on some systems; the service only takes image/* and
# video/* uploads, so a file's type has to be named even where the table is thin.
_MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
}
_PROBLEM_TEXT_LIMIT = 300


# --- submissions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """What to send for one ``submit``: the inputs, and how the options read on the wire."""

    sources: list[Path | Upload]
    target: Path | Upload
    options: dict[str, Any]
    webhook_url: str | None
    ttl_seconds: int | None

    @classmethod
    def of(
        cls,
        source: Input | Sequence[Input],
        target: Input,
        options: JobOptions | Mapping[str, Any] | None,
        webhook_url: str | None,
        ttl_seconds: int | None,
    ) -> "Submission":
        many = source if isinstance(source, Sequence) and not isinstance(source, str) else [source]
        if not many:
            raise ValueError("submit needs at least one source")
        return cls(
            sources=[_input(item) for item in many],
            target=_input(target),
            options=options_json(options),
            webhook_url=webhook_url,
            ttl_seconds=ttl_seconds,
        )

    @property
    def inputs(self) -> list[Path | Upload]:
        return [*self.sources, self.target]

    def fits_inline(self, limit: int) -> bool:
        """Small local files go in the job request itself; anything else through uploads."""
        paths = [item for item in self.inputs if isinstance(item, Path)]
        return len(paths) == len(self.inputs) and sum(p.stat().st_size for p in paths) <= limit

    def multipart(self) -> tuple[list[tuple[str, tuple[str, bytes, str]]], dict[str, str]]:
        """``files`` and ``data`` of the inline ``POST /jobs``."""
        files = [
            (field, (path.name, path.read_bytes(), content_type_of(path)))
            for field, path in [*(("source", s) for s in self.sources), ("target", self.target)]
            if isinstance(path, Path)
        ]
        data = {"options": json.dumps(self.options)} if self.options else {}
        if self.webhook_url is not None:
            data["webhook_url"] = self.webhook_url
        if self.ttl_seconds is not None:
            data["ttl_seconds"] = str(self.ttl_seconds)
        return files, data

    def json_body(self, uploads: Sequence[Upload]) -> dict[str, Any]:
        """The JSON ``POST /jobs`` referencing ``uploads``: one per input, in ``inputs``
        order (the service takes each upload once, so a file given twice is sent twice)."""
        if len(uploads) != len(self.inputs):
            raise ValueError(f"{len(self.inputs)} inputs but {len(uploads)} uploads")
        refs = [{"upload_id": upload.upload_id} for upload in uploads]
        body: dict[str, Any] = {"sources": refs[:-1], "target": refs[-1], "options": self.options}
        if self.webhook_url is not None:
            body["webhook_url"] = self.webhook_url
        if self.ttl_seconds is not None:
            body["ttl_seconds"] = self.ttl_seconds
        return body


def _input(item: Input) -> Path | Upload:
    if isinstance(item, Upload):
        return item
    path = Path(item)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "no such input file", str(path))
    return path


def content_type_of(path: Path) -> str:
    """The media type the service expects for ``path`` (from its suffix)."""
    known = _MEDIA_TYPES.get(path.suffix.lower())
    return known or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def upload_request(path: Path) -> dict[str, Any]:
    """The ``POST /uploads`` body announcing ``path``."""
    return {
        "filename": path.name,
        "content_type": content_type_of(path),
        "size": path.stat().st_size,
    }


@dataclass(frozen=True)
class UploadTarget:
    """Where and how to send one upload's bytes."""

    upload: Upload
    url: str
    method: str
    headers: dict[str, str]
    on_service: bool  # True: the service's own upload endpoint (mTLS), else object storage

    @classmethod
    def from_json(cls, body: object, path: Path, base_url: httpx.URL) -> "UploadTarget":
        if not isinstance(body, dict):
            raise UnexpectedResponseError("not an upload")
        try:
            url, on_service = resolve(base_url, str(body["url"]))
            return cls(
                upload=Upload(str(body["upload_id"]), path.name, path.stat().st_size),
                url=url,
                method=str(body.get("method", "PUT")),
                headers={str(k): str(v) for k, v in dict(body.get("headers") or {}).items()},
                on_service=on_service,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UnexpectedResponseError(f"not an upload: {exc!r}") from exc

    def request_headers(self) -> dict[str, str]:
        # S3 presigned PUTs refuse chunked bodies: always announce the exact length.
        return {**self.headers, "Content-Length": str(self.upload.size)}


def resolve(base_url: httpx.URL, url: str) -> tuple[str, bool]:
    """``url`` made absolute against the service, and whether it is on the service itself."""
    absolute = base_url.join(url)
    same = (absolute.scheme, absolute.host, absolute.port) == (
        base_url.scheme,
        base_url.host,
        base_url.port,
    )
    return str(absolute), same


def host_of(url: str) -> str:
    """Scheme, host and port only: presigned query strings are credentials, never shown."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


def job_path(job: JobRef) -> str:
    return f"/jobs/{job_id_of(job)}"


# --- responses ------------------------------------------------------------------------


def raise_for_problem(response: httpx.Response) -> None:
    """Raise the typed ``EnclaveAPIError`` for an error response (nothing on success).

    The response body must have been read (``response.read()`` for streams).
    """
    if response.is_success or response.is_redirect:
        return
    document: dict[str, Any] = {}
    try:
        parsed = response.json()
        if isinstance(parsed, dict):
            document = parsed
    except ValueError:
        pass
    title = str(document.get("title") or response.reason_phrase or "HTTP error")
    detail = document.get("detail")
    if detail is None:  # not a problem document (a proxy's page, say)
        detail = response.text.strip()[:_PROBLEM_TEXT_LIMIT] if not document else ""
    status = response.status_code
    error_class = ERRORS_BY_STATUS.get(status) or (
        ServerError if status >= 500 else EnclaveAPIError
    )
    fields: dict[str, Any] = {
        "instance": document.get("instance"),
        "errors": [e for e in document.get("errors") or [] if isinstance(e, dict)],
    }
    if error_class is RateLimitedError:
        fields["retry_after"] = retry_after_seconds(response.headers.get("Retry-After"))
    raise error_class(
        status, str(document.get("type") or "about:blank"), title, str(detail), **fields
    )


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def redirect_location(response: httpx.Response) -> str:
    location = response.headers.get("Location")
    if not location:
        raise UnexpectedResponseError(f"HTTP {response.status_code} without a Location")
    return str(location)


def json_body(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError as exc:
        raise UnexpectedResponseError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code} without a JSON body"
        ) from exc


_FILENAME = re.compile(r'filename="?([^";]+)"?')


def download_path(path: Path, job_id: str, response: httpx.Response) -> Path:
    """Where a download goes: ``path``, or inside it when it is a directory (named as the
    service suggests, reduced to a bare file name)."""
    if not path.is_dir():
        return path
    match = _FILENAME.search(response.headers.get("Content-Disposition", ""))
    name = Path(match.group(1)).name if match else ""
    if not name or name in {".", ".."}:
        name = Path(response.url.path).name or job_id
    return path / name


@contextmanager
def transport_errors(host: str) -> Iterator[None]:
    """httpx's connection, TLS and timeout failures as ``EnclaveConnectionError``."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise EnclaveConnectionError(f"timed out talking to {host}") from exc
    except httpx.TransportError as exc:
        raise EnclaveConnectionError(f"could not reach {host}: {exc}") from exc


def user_agent() -> str:
    return f"enclave-client/{__version__} httpx/{httpx.__version__}"
