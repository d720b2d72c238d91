"""The default audit sink: an append-only local file of chained lines, plus its head record.

One writer at a time: a thread lock inside the process and ``flock`` across processes
(several uvicorn workers may share a file). Under the lock the writer re-reads the file's
last line if another process appended since, so the chain stays one chain.

Group commit: requests that arrive while a batch is being written wait for the next
batch, which writes all their lines with one ``write``, one ``fsync`` and one head
record. Each caller still returns only once its own line is on disk, so "no response
without its audit line" holds; under load the cost per line falls instead of requests
queueing behind one fsync each (docs/performance.md, API).
"""

import asyncio
import fcntl
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio.to_thread

from app.security.audit.chain import EMPTY_HEAD, ChainHead, line_digest, seal
from app.security.config import FsyncPolicy
from app.security.errors import AuditError

TAIL_CHUNK = 64 * 1024


def head_path(log: Path) -> Path:
    return log.with_name(log.name + ".head")


def read_last_line(path: Path) -> str | None:
    """The file's last complete line, or ``None`` for an empty file."""
    with path.open("rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        if end == 0:
            return None
        data = b""
        position = end
        while position > 0:
            step = min(TAIL_CHUNK, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
            if data.count(b"\n") >= 2 or position == 0:
                break
    if not data.endswith(b"\n"):
        raise AuditError(f"{path} ends with a partial line; run `enclave audit verify {path}`")
    return data[:-1].rsplit(b"\n", 1)[-1].decode("utf-8")


def head_of_line(line: str | None, path: Path) -> ChainHead:
    if line is None:
        return EMPTY_HEAD
    try:
        seq = int(json.loads(line)["seq"])
    except (ValueError, KeyError, TypeError) as error:
        raise AuditError(f"the last line of {path} is not an audit line") from error
    return ChainHead(seq=seq, digest=line_digest(line))


class FileAuditSink:
    """Appends sealed lines to ``path`` (mode 0600) and keeps ``<path>.head`` current."""

    def __init__(
        self,
        path: Path,
        fsync: FsyncPolicy = FsyncPolicy.ALWAYS,
        fsync_interval: timedelta = timedelta(seconds=1),
    ) -> None:
        self.path = path
        self.fsync = fsync
        self.fsync_interval = fsync_interval.total_seconds()
        self._lock = threading.Lock()
        self._descriptor: int | None = None
        self._head = EMPTY_HEAD
        self._known_size = -1
        self._last_fsync = 0.0
        self._waiting: list[tuple[Mapping[str, Any], asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def open(self) -> None:
        await anyio.to_thread.run_sync(self.open_sync)

    async def write(self, fields: Mapping[str, Any]) -> None:
        """Append ``fields`` as the next line; returns once the line is written (and synced,
        as the fsync policy says), in the same batch as any lines queued meanwhile."""
        loop = asyncio.get_running_loop()
        written: asyncio.Future[None] = loop.create_future()
        self._waiting.append((fields, written))
        committer = self._committer
        if committer is None or committer.done() or committer.get_loop() is not loop:
            self._committer = loop.create_task(self._commit_waiting())
        await asyncio.shield(written)  # a cancelled request still gets its line written

    async def close(self) -> None:
        if self._committer is not None and not self._committer.done():
            await self._committer
        await anyio.to_thread.run_sync(self.close_sync)

    async def _commit_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await anyio.to_thread.run_sync(self.write_batch_sync, [f for f, _ in batch])
            except Exception as error:
                for _, written in batch:
                    if not written.done():
                        written.set_exception(error)
            except BaseException:
                for _, written in batch:
                    if not written.done():
                        written.set_exception(AuditError("the audit writer was stopped"))
                raise
            else:
                for _, written in batch:
                    if not written.done():
                        written.set_result(None)

    def open_sync(self) -> None:
        """Open the log and resume the chain from its last line (checked against the head)."""
        with self._lock:
            if self._descriptor is not None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as error:
                raise AuditError(f"cannot open the audit log {self.path}: {error}") from error
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            try:
                tail = self._resume()
                recorded = self._read_head()
                if recorded is not None and (
                    recorded.seq > tail.seq or (recorded.seq == tail.seq and recorded != tail)
                ):
                    raise AuditError(
                        f"{self.path} does not end where {head_path(self.path)} says "
                        f"(seq {tail.seq} vs {recorded.seq}): lines were removed or edited; "
                        f"run `enclave audit verify {self.path}`, then move the log aside"
                    )
                # A head one line behind is a crash between the two writes; catch it up.
                self._write_head(tail)
            except BaseException:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
                os.close(descriptor)
                raise
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            self._descriptor = descriptor

    def write_sync(self, fields: Mapping[str, Any]) -> None:
        self.write_batch_sync([fields])

    def write_batch_sync(self, batch: Sequence[Mapping[str, Any]]) -> None:
        """Seal and append ``batch`` in order, with one write, sync and head record."""
        if self._descriptor is None:
            self.open_sync()
        with self._lock:
            descriptor = self._descriptor
            if descriptor is None:
                raise AuditError("the audit log is closed")
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            try:
                if os.fstat(descriptor).st_size != self._known_size:
                    self._resume()  # another process appended since our last line
                head = self._head
                lines = []
                for fields in batch:
                    line, head = seal(fields, head)
                    lines.append(line + "\n")
                data = "".join(lines).encode("utf-8")
                written = os.write(descriptor, data)
                if written != len(data):
                    raise AuditError(f"short write to {self.path}")
                self._maybe_fsync(descriptor)
                self._head = head
                self._known_size = os.fstat(descriptor).st_size
                self._write_head(head)
            except OSError as error:
                raise AuditError(f"cannot write the audit log {self.path}: {error}") from error
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)

    def close_sync(self) -> None:
        with self._lock:
            if self._descriptor is None:
                return
            if self.fsync is not FsyncPolicy.NEVER:
                os.fsync(self._descriptor)
            os.close(self._descriptor)
            self._descriptor = None

    def _resume(self) -> ChainHead:
        self._head = head_of_line(read_last_line(self.path), self.path)
        self._known_size = self.path.stat().st_size
        return self._head

    def _maybe_fsync(self, descriptor: int) -> None:
        if self.fsync is FsyncPolicy.NEVER:
            return
        now = time.monotonic()
        if self.fsync is FsyncPolicy.ALWAYS or now - self._last_fsync >= self.fsync_interval:
            os.fsync(descriptor)
            self._last_fsync = now

    def _read_head(self) -> ChainHead | None:
        try:
            return ChainHead.from_json(head_path(self.path).read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as error:
            raise AuditError(f"{head_path(self.path)} is not an audit head record") from error

    def _write_head(self, head: ChainHead) -> None:
        target = head_path(self.path)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(head.to_json() + "\n")
            if self.fsync is FsyncPolicy.ALWAYS:
                handle.flush()
                os.fsync(handle.fileno())
        temporary.replace(target)
