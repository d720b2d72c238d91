"""Object keys: built only from a job id, a fixed area and a sanitised file name.

User input never reaches a key unfiltered: ``job_key`` keeps a caller's file name only when
it is already a plain, short ``[A-Za-z0-9._-]`` name, and otherwise derives a stable
generated one (keeping a safe extension). ``validate_key`` is the backends' last line of
defence and refuses anything that could escape a root or confuse an S3 listing.
"""

import hashlib
import re
import uuid
from typing import Literal

from app.storage.errors import InvalidKeyError

Area = Literal["inputs", "outputs"]
AREAS: tuple[Area, ...] = ("inputs", "outputs")

MAX_FILENAME_LENGTH = 128
# S3 allows 1024 bytes; staying well below leaves room for a bucket-side prefix.
MAX_KEY_LENGTH = 512

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SAFE_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}")
_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._=-]*")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def require_plain_filename(filename: str) -> str:
    """``filename`` if it names a file and nothing else, else ``InvalidKeyError``.

    A caller's name that carries folders (``../../etc/passwd``, ``C:\\x``, ``/abs``),
    control characters, or is hidden or overlong is refused outright rather than quietly
    rewritten: it says something about the caller worth a clear 4xx. Names that are merely
    unusual (spaces, accents) are accepted and mapped by ``safe_filename``.
    """
    if (
        not filename
        or len(filename) > 255
        or re.search(r"[/\\]", filename)
        or _CONTROL_CHARS.search(filename)
        or filename.startswith(".")
    ):
        raise InvalidKeyError(
            f"file name {filename[:80]!r} must be a plain name: no folders, no control "
            "characters, not hidden, at most 255 characters"
        )
    return filename


def safe_filename(filename: str) -> str:
    """Return ``filename`` if it is already a plain safe name, else a stable generated one.

    The generated name is ``file-<16 hex of sha256(name)>`` plus the original extension
    when that extension is short and alphanumeric, so the same upload name always maps to
    the same key and a re-run overwrites instead of duplicating.
    """
    basename = re.split(r"[/\\]", filename)[-1].strip()
    if (
        len(basename) <= MAX_FILENAME_LENGTH
        and _SAFE_NAME.fullmatch(basename)
        and ".." not in basename
    ):
        return basename
    digest = hashlib.sha256(filename.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    dot = basename.rfind(".")
    extension = basename[dot:].lower() if dot > 0 else ""
    if not _SAFE_EXTENSION.fullmatch(extension):
        extension = ""
    return f"file-{digest}{extension}"


def job_prefix(job_id: uuid.UUID, area: Area) -> str:
    """The prefix holding every object of one job area, e.g. ``inputs/<job-id>/``."""
    if area not in AREAS:
        raise InvalidKeyError(f"unknown storage area {area!r}; expected one of {AREAS}")
    if not isinstance(job_id, uuid.UUID):
        raise InvalidKeyError("job id must be a UUID")
    return f"{area}/{job_id}/"


def job_key(job_id: uuid.UUID, area: Area, filename: str) -> str:
    """The key of one job file: ``<area>/<job-id>/<sanitised name>``."""
    return validate_key(job_prefix(job_id, area) + safe_filename(filename))


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is a safe object key, else raise ``InvalidKeyError``."""
    _check_common(key, what="key")
    if key.endswith("/"):
        raise InvalidKeyError("key must not end with '/'")
    _check_segments(key.split("/"), what="key")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a safe, non-empty prefix ending in ``/``.

    The trailing slash is required so that deleting ``inputs/<id>/`` can never reach
    ``inputs/<id>0…``, and an empty prefix (everything) is refused outright.
    """
    _check_common(prefix, what="prefix")
    if not prefix.endswith("/"):
        raise InvalidKeyError("prefix must end with '/'")
    _check_segments(prefix[:-1].split("/"), what="prefix")
    return prefix


def _check_common(value: str, *, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidKeyError(f"{what} must be a non-empty string")
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidKeyError(f"{what} is longer than {MAX_KEY_LENGTH} characters")
    if _CONTROL_CHARS.search(value):
        raise InvalidKeyError(f"{what} contains control characters")
    if "\\" in value:
        raise InvalidKeyError(f"{what} contains a backslash")
    if value.startswith("/"):
        raise InvalidKeyError(f"{what} must be relative (it starts with '/')")


def _check_segments(segments: list[str], *, what: str) -> None:
    for segment in segments:
        if segment == "":
            raise InvalidKeyError(f"{what} has an empty path segment ('//')")
        if segment in (".", ".."):
            raise InvalidKeyError(f"{what} has a '{segment}' path segment")
        if not _SAFE_SEGMENT.fullmatch(segment):
            raise InvalidKeyError(
                f"{what} segment {segment!r} must use only [A-Za-z0-9._=-] "
                "and must not start with '.'"
            )
