"""Checking and storing the inline inputs of submissions that arrive together.

A multipart job's small files are decoded (to check they are media the pipeline accepts)
and written to storage before its row is inserted. Done per submission, that took two
trips to a worker thread each, and every trip cost the event loop's thread a GIL hand-off
and a wake-up: under load, a large share of a submission (docs/performance.md). Here
submissions that arrive while a batch is under way wait for the next one, which checks all
their files in one trip and writes every file that passed with one ``Storage.put_many``.
A submission whose files fail gets its own error and the others go on; each caller returns
only once its own files are written or refused, so none is half-stored behind an answer.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from app.storage.base import ObjectData, Storage
from pipeline.inspect import inspect_media_bytes
from pipeline.media import MediaKind
from pipeline.options import Limits


@dataclass(frozen=True)
class InlineInput:
    """One inline file: its bytes, name and the media kind it must be (``None``: any)."""

    data: bytes
    filename: str
    expect: MediaKind | None


@dataclass
class _Pending:
    inputs: Sequence[InlineInput]
    objects: Sequence[ObjectData]
    done: asyncio.Future[None]


class InlineInputWriter:
    """``check_and_store`` raises what checking or writing that submission's files raised."""

    def __init__(self, storage: Storage, limits: Limits) -> None:
        self.storage = storage
        self.limits = limits
        self._waiting: list[_Pending] = []
        self._batcher: asyncio.Task[None] | None = None

    async def check_and_store(
        self, inputs: Sequence[InlineInput], objects: Sequence[ObjectData]
    ) -> None:
        """Check ``inputs`` (decoding or probing each), then write ``objects``.

        A cancelled caller still waits for its batch to settle before the cancellation
        goes on: it then deletes what was written, which must not race a write under way.
        """
        loop = asyncio.get_running_loop()
        pending = _Pending(inputs, objects, loop.create_future())
        self._waiting.append(pending)
        batcher = self._batcher
        if batcher is None or batcher.done() or batcher.get_loop() is not loop:
            self._batcher = loop.create_task(self._run_batches())
        try:
            await asyncio.shield(pending.done)
        except asyncio.CancelledError:
            await asyncio.wait([pending.done])
            if not pending.done.cancelled():
                pending.done.exception()  # retrieved: the caller is gone, not the error
            raise

    async def _run_batches(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await self._check_and_store(batch)
            except BaseException:
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_exception(RuntimeError("the input writer was stopped"))
                raise

    async def _check_and_store(self, batch: list[_Pending]) -> None:
        failures = await asyncio.to_thread(
            _inspect_each, [pending.inputs for pending in batch], self.limits
        )
        passed = []
        for pending, failure in zip(batch, failures, strict=True):
            if failure is None:
                passed.append(pending)
            else:
                pending.done.set_exception(failure)
        if not passed:
            return
        try:
            await self.storage.put_many([item for pending in passed for item in pending.objects])
        except Exception:
            # A write failed for the batch: write each submission's files on its own, so
            # each caller gets its own outcome.
            for pending in passed:
                try:
                    await self.storage.put_many(pending.objects)
                except Exception as error:
                    pending.done.set_exception(error)
                else:
                    pending.done.set_result(None)
            return
        for pending in passed:
            pending.done.set_result(None)


def _inspect_each(
    submissions: list[Sequence[InlineInput]], limits: Limits
) -> list[Exception | None]:
    """Each submission's first failure (``None``: all its files are acceptable media)."""
    failures: list[Exception | None] = []
    for inputs in submissions:
        try:
            for item in inputs:
                inspect_media_bytes(item.data, limits, item.filename, expect=item.expect)
        except Exception as error:
            failures.append(error)
        else:
            failures.append(None)
    return failures
