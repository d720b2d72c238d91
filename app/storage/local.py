"""Local-directory storage: the default backend, one file per key under a root directory.

Every write goes to a hidden temporary file in the destination directory and is then
renamed over the target (``os.replace``), so readers see the old object or the whole new
one, never a half-written file. Keys are validated, and a path through a symlink is
refused, so one planted inside the root cannot lead outside it.
"""

import asyncio
import mimetypes
import os
import shutil
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from app.storage.base import ObjectInfo, PresignedRequest
from app.storage.errors import (
    InvalidKeyError,
    ObjectNotFoundError,
    ObjectTooLargeError,
    StorageError,
    StorageUnavailableError,
)
from app.storage.keys import validate_key, validate_prefix
from app.storage.upload_token import UploadGrant, UploadTokenSigner

CHUNK_SIZE = 1024 * 1024
_TEMP_PREFIX = ".tmp-"


class LocalStorage:
    """Objects as files under ``root``; uploads go through the service's own upload URL."""

    def __init__(
        self,
        root: Path,
        *,
        upload_secret: bytes,
        upload_path: str = "/uploads",
        chunk_size: int = CHUNK_SIZE,
        clock: Callable[[], float] | None = None,
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self._root = root.resolve(strict=True)
        self._tokens = UploadTokenSigner(upload_secret, clock=clock or time.time)
        self._upload_path = upload_path.rstrip("/")
        self._chunk_size = chunk_size

    @property
    def root(self) -> Path:
        return self._root

    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        """Copy a local file into the store (atomically)."""
        target = self._path(key)

        def copy() -> None:
            with path.open("rb") as source, self._atomic_writer(target) as sink:
                shutil.copyfileobj(source, sink, self._chunk_size)

        await asyncio.to_thread(copy)

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store a small object (atomically)."""
        target = self._path(key)

        def write() -> None:
            with self._atomic_writer(target) as sink:
                sink.write(data)

        await asyncio.to_thread(write)

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], max_bytes: int) -> int:
        """Store a streamed upload of at most ``max_bytes``; returns its size.

        Past the limit the partial file is discarded and ``ObjectTooLargeError`` raised, so
        the key keeps its previous content (usually none).
        """
        writer = self._atomic_writer(self._path(key))
        sink = await asyncio.to_thread(writer.__enter__)
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise ObjectTooLargeError(max_bytes)
                await asyncio.to_thread(sink.write, chunk)
        except BaseException as exc:
            await asyncio.to_thread(writer.__exit__, type(exc), exc, exc.__traceback__)
            raise
        await asyncio.to_thread(writer.__exit__, None, None, None)
        return size

    async def get_file(self, key: str, path: Path) -> None:
        """Copy an object to ``path`` (atomically; raises ``ObjectNotFoundError``)."""
        source_path = self._path(key)

        def copy() -> None:
            # A working copy (a worker's download): atomic, but not synced to disk, as the
            # object it copies is the durable one.
            with (
                self._open_object(key, source_path) as source,
                self._atomic_writer(path, durable=False) as sink,
            ):
                shutil.copyfileobj(source, sink, self._chunk_size)

        await asyncio.to_thread(copy)

    async def stat(self, key: str) -> ObjectInfo:
        """Size and type (guessed from the name's extension) of an object."""
        path = self._path(key)
        try:
            result = await asyncio.to_thread(path.stat)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFoundError(key) from exc
        if not stat.S_ISREG(result.st_mode):
            raise ObjectNotFoundError(key)
        content_type, _ = mimetypes.guess_type(path.name)
        return ObjectInfo(key=key, size=result.st_size, content_type=content_type)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (which must end in ``/``)."""
        directory = self._path(validate_prefix(prefix).rstrip("/"), validated=True)

        def delete() -> int:
            if not directory.is_dir():
                return 0
            count = sum(
                1
                for _, _, names in os.walk(directory)
                for name in names
                if not name.startswith(_TEMP_PREFIX)
            )
            shutil.rmtree(directory)
            return count

        return await asyncio.to_thread(delete)

    async def iter_bytes(self, key: str) -> AsyncIterator[bytes]:
        """Stream an object in chunks, reading off the event loop."""
        path = self._path(key)
        try:
            source = await asyncio.to_thread(_open_regular_file, path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFoundError(key) from exc
        try:
            while chunk := await asyncio.to_thread(source.read, self._chunk_size):
                yield chunk
        finally:
            await asyncio.to_thread(source.close)

    async def presign_put(
        self, key: str, content_type: str, max_bytes: int, expires_in: timedelta
    ) -> PresignedRequest:
        """An upload URL on the service itself: ``PUT {upload_path}/{token}``."""
        validate_key(key)
        token = self._tokens.issue(key, max_bytes, expires_in.total_seconds())
        return PresignedRequest(
            url=f"{self._upload_path}/{token}",
            method="PUT",
            headers={"Content-Type": content_type},
            expires_in=expires_in,
        )

    async def presign_get(self, key: str, expires_in: timedelta) -> PresignedRequest | None:
        """``None``: the API streams local objects itself (``iter_bytes``)."""
        validate_key(key)
        return None

    def verify_upload_token(self, token: str) -> UploadGrant:
        """The ``(key, max_bytes)`` grant a token from ``presign_put`` carries.

        Raises ``InvalidUploadTokenError`` (forged/malformed) or ``UploadTokenExpiredError``.
        """
        return self._tokens.verify(token)

    async def check(self) -> None:
        """Raise ``StorageUnavailableError`` unless the root is a writable directory."""
        if not await asyncio.to_thread(os.access, self._root, os.W_OK | os.X_OK):
            raise StorageUnavailableError(f"storage root {self._root} is not writable")

    def _path(self, key: str, *, validated: bool = False) -> Path:
        """The file of ``key``, refusing any symlink on the way: one planted inside the root
        could lead anywhere. The key is validated (no ``..``, no empty or absolute
        segments) and the root was resolved once, so an ``lstat`` of the key's own
        components is enough; ``Path.resolve`` walked the whole absolute path on every call.
        """
        if not validated:
            validate_key(key)
        path = str(self._root)
        for segment in key.split("/"):
            path = f"{path}/{segment}"
            try:
                mode = os.lstat(path).st_mode
            except (FileNotFoundError, NotADirectoryError):
                break  # the rest does not exist yet: nothing to follow
            if stat.S_ISLNK(mode):
                reason = "passes through a symlink, which may lead outside the storage root"
                raise InvalidKeyError(f"key {key!r} {reason}")
        return self._root / key

    @staticmethod
    @contextmanager
    def _open_object(key: str, path: Path) -> Iterator[BinaryIO]:
        try:
            source = _open_regular_file(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFoundError(key) from exc
        with source:
            yield source

    @staticmethod
    @contextmanager
    def _atomic_writer(target: Path, *, durable: bool = True) -> Iterator[BinaryIO]:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=target.parent)
        except OSError as exc:
            raise StorageError(f"cannot write under {target.parent}: {exc.strerror}") from exc
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as sink:
                yield sink
                if durable:
                    _flush_to_disk(sink)
            temp.replace(target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise


def _open_regular_file(path: Path) -> BinaryIO:
    source = path.open("rb")
    if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
        source.close()
        raise IsADirectoryError(str(path))
    return source


def _flush_to_disk(sink: BinaryIO) -> None:
    sink.flush()
    os.fsync(sink.fileno())
