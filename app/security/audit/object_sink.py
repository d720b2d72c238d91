"""Audit lines shipped to the object store in batches: ``<prefix>/<date>/<seq>.jsonl``.

Each batch object is named by the ``seq`` of its first line (zero-padded, so a listing
sorts in chain order) under the UTC date it was written; ``<prefix>/head.json`` records
the chain's end after every batch and is where a restarted writer resumes. Lines wait in
memory until ``batch_lines`` are queued or ``flush_interval`` has passed, and are flushed
on close; one writer process per prefix (use the file sink with several workers).
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from app.security.audit.chain import EMPTY_HEAD, ChainHead, seal
from app.security.errors import AuditError
from app.storage.base import Storage
from app.storage.errors import StorageError

logger = logging.getLogger(__name__)

MAX_PENDING_BATCHES = 50  # beyond this the store has been down too long: refuse requests


class ObjectStoreAuditSink:
    def __init__(
        self,
        storage: Storage,
        prefix: str = "audit",
        batch_lines: int = 200,
        flush_interval: timedelta = timedelta(seconds=5),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.storage = storage
        self.prefix = prefix.strip("/")
        self.batch_lines = batch_lines
        self.flush_interval = flush_interval
        self.clock = clock
        self._lock = asyncio.Lock()
        self._head = EMPTY_HEAD
        self._flushed = EMPTY_HEAD
        self._pending: list[str] = []
        self._opened = False
        self._ticker: asyncio.Task[None] | None = None

    @property
    def head_key(self) -> str:
        return f"{self.prefix}/head.json"

    def batch_key(self, first_seq: int, day: datetime) -> str:
        return f"{self.prefix}/{day:%Y-%m-%d}/{first_seq:012d}.jsonl"

    async def open(self) -> None:
        async with self._lock:
            await self._open_locked()

    async def write(self, fields: Mapping[str, Any]) -> None:
        async with self._lock:
            await self._open_locked()
            if len(self._pending) >= MAX_PENDING_BATCHES * self.batch_lines:
                raise AuditError("the object store has not accepted audit lines for too long")
            line, self._head = seal(fields, self._head)
            self._pending.append(line)
            if len(self._pending) >= self.batch_lines:
                await self._flush_locked()

    async def flush(self) -> None:
        async with self._lock:
            await self._flush_locked()

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self.flush()

    async def _open_locked(self) -> None:
        if self._opened:
            return
        try:
            if await self.storage.exists(self.head_key):
                chunks = [chunk async for chunk in self.storage.iter_bytes(self.head_key)]
                self._head = ChainHead.from_json(b"".join(chunks).decode("utf-8"))
        except StorageError as error:
            raise AuditError(f"cannot read the audit head {self.head_key}: {error}") from error
        except (ValueError, KeyError, TypeError) as error:
            raise AuditError(f"{self.head_key} is not an audit head record") from error
        self._flushed = self._head
        self._opened = True
        self._ticker = asyncio.create_task(self._tick())

    async def _flush_locked(self) -> None:
        if not self._pending:
            return
        key = self.batch_key(self._flushed.seq + 1, self.clock())
        body = ("\n".join(self._pending) + "\n").encode("utf-8")
        try:
            await self.storage.put_bytes(key, body, "application/x-ndjson")
            await self.storage.put_bytes(
                self.head_key, self._head.to_json().encode("utf-8"), "application/json"
            )
        except StorageError as error:
            # Lines stay queued and go with the next flush; nothing is dropped.
            raise AuditError(f"cannot ship audit lines to {key}: {error}") from error
        self._pending.clear()
        self._flushed = self._head

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval.total_seconds())
            try:
                await self.flush()
            except AuditError as error:
                logger.error("audit flush failed, will retry: %s", error)
