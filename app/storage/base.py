"""The ``Storage`` protocol every backend implements.

Keys are built by the service from validated parts only (``job_key``); backends refuse
keys that could escape their root (``..``, absolute paths, empty segments).
"""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class PresignedRequest:
    """A URL the client uses directly, and the headers it must send with it."""

    url: str
    method: str
    headers: dict[str, str]
    expires_in: timedelta


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None


@dataclass(frozen=True)
class ObjectData:
    """A small object to store: its key, bytes and content type."""

    key: str
    data: bytes
    content_type: str | None = None


class Storage(Protocol):
    """Async object storage keyed by ``/``-separated keys."""

    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        """Store a local file as an object. A backend may keep the file itself (local
        storage hard-links it): do not change ``path`` in place afterwards."""

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store a small object."""

    async def put_many(self, objects: Sequence[ObjectData]) -> None:
        """Store several small objects (a job's inline inputs), each atomically. When it
        raises (the first error), no write is still under way; some may have been made."""

    async def get_file(self, key: str, path: Path) -> None:
        """Put an object in a local file (raises ``ObjectNotFoundError``). The file may
        share its storage with the object (local storage hard-links it): only read it."""

    async def stat(self, key: str) -> ObjectInfo:
        """Size and type of an object (raises ``ObjectNotFoundError``)."""

    async def exists(self, key: str) -> bool: ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many were deleted."""

    def iter_bytes(self, key: str) -> AsyncIterator[bytes]:
        """Stream an object's bytes."""

    async def presign_put(
        self, key: str, content_type: str, max_bytes: int, expires_in: timedelta
    ) -> PresignedRequest:
        """A short-lived upload URL for exactly this key."""

    async def presign_get(self, key: str, expires_in: timedelta) -> PresignedRequest | None:
        """A short-lived download URL, or ``None`` where the backend streams instead."""

    async def check(self) -> None:
        """Raise ``StorageUnavailableError`` if the backend cannot be reached (for /readyz)."""
