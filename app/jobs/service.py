"""What callers can do with jobs: submit, read, list, cancel, delete, fetch results.

Routes call this and map its results; it owns ownership checks (a caller sees only its
own jobs, others' ids are "not found"), idempotency, backpressure, retention and the
start-up and periodic recovery sweeps. State changes go through the store's conditional
updates, never by assigning attributes.
"""

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import (
    IdempotencyConflictError,
    InvalidJobRequestError,
    JobConflictError,
    ResultGoneError,
    UploadNotFoundError,
)
from app.ids import random_uuid
from app.jobs import store
from app.jobs.cleanup import input_prefixes, purge_inputs
from app.jobs.cursor import decode_cursor, encode_cursor
from app.jobs.dispatch import Dispatcher
from app.jobs.intake import JobWriter
from app.jobs.models import Job, Upload
from app.jobs.notify import notify_job_ended
from app.jobs.options import JobOptions
from app.jobs.states import JobState
from app.jobs.worker import utcnow
from app.settings import Settings
from app.storage.base import ObjectData, PresignedRequest, Storage
from app.storage.errors import ObjectNotFoundError
from app.storage.keys import job_key, job_prefix, require_plain_filename
from pipeline.inspect import HEAD_BYTES, inspect_media_bytes, inspect_media_head
from pipeline.media import MediaKind
from pipeline.options import Limits

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InlineFile:
    """A small input sent with the job request itself (multipart)."""

    filename: str
    data: bytes
    content_type: str | None = None


InputRef = uuid.UUID | InlineFile
"""An input is an upload id (from ``POST /uploads``) or an inline file."""


@dataclass(frozen=True)
class JobRequest:
    sources: Sequence[InputRef]
    target: InputRef
    options: JobOptions = field(default_factory=JobOptions)
    webhook_url: str | None = None
    ttl: timedelta | None = None  # at most settings.job_ttl

    def fingerprint(self) -> str:
        """SHA-256 over everything that defines the job (idempotency compares this)."""
        digest = hashlib.sha256()

        def add(ref: InputRef) -> str:
            if isinstance(ref, InlineFile):
                return "inline:" + hashlib.sha256(ref.data).hexdigest()
            return f"upload:{ref}"

        document = {
            "sources": [add(ref) for ref in self.sources],
            "target": add(self.target),
            "options": self.options.model_dump(mode="json"),
            "webhook_url": self.webhook_url,
            "ttl_s": None if self.ttl is None else self.ttl.total_seconds(),
        }
        digest.update(json.dumps(document, sort_keys=True).encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class Submission:
    job: Job
    created: bool  # False: an idempotent replay of an earlier request


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None


@dataclass(frozen=True)
class SweepReport:
    expired: list[uuid.UUID]
    redispatched: list[uuid.UUID]
    outputs_purged: list[uuid.UUID]
    uploads_purged: list[uuid.UUID] = field(default_factory=list)


class JobService:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        storage: Storage,
        dispatcher: Dispatcher,
        *,
        clock: Callable[[], datetime] = utcnow,
        check_webhook_url: Callable[[str], object] | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.storage = storage
        self.dispatcher = dispatcher
        self.clock = clock
        self._check_webhook_url = check_webhook_url
        self._undispatched: set[uuid.UUID] = set()
        self._writer = JobWriter(sessions, settings.max_queued_jobs)

    # --- submission ---------------------------------------------------------------

    async def submit(
        self, owner: str, request: JobRequest, *, idempotency_key: str | None = None
    ) -> Submission:
        """Create and dispatch a job, or return the job an identical earlier request made."""
        fingerprint = request.fingerprint()
        if idempotency_key is not None:
            replay = await self._replay(owner, idempotency_key, fingerprint)
            if replay is not None:
                return Submission(replay, created=False)
        if request.webhook_url is not None and self._check_webhook_url is not None:
            self._check_webhook_url(request.webhook_url)
        self._writer.refuse_if_recently_full()  # shed load before any work

        job_id = random_uuid()
        now = self.clock()
        ttl = min(request.ttl or self.settings.job_ttl, self.settings.job_ttl)
        handed_to_writer = False
        try:
            # Media checks and storage I/O happen before the transaction, so the job
            # store's write lock (SQLite has one) is held only for the inserts.
            *sources, target = await self._checked_inputs(owner, job_id, request)
            job = Job(
                id=job_id,
                owner=owner,
                state=JobState.QUEUED,
                options=request.options.model_dump(mode="json"),
                source_keys=sources,
                target_key=target,
                progress=0.0,
                attempts=0,
                max_attempts=self.settings.max_attempts,
                cancel_requested=False,
                idempotency_key=idempotency_key,
                request_hash=fingerprint,
                webhook_url=request.webhook_url,
                created_at=now,
                expires_at=now + ttl,
            )
            uploads = [
                ref for ref in (*request.sources, request.target) if isinstance(ref, uuid.UUID)
            ]
            handed_to_writer = True
            await self._writer.insert(job, uploads)
        except IntegrityError:
            # Two requests with one Idempotency-Key raced; the other one's job stands.
            await self.storage.delete_prefix(job_prefix(job_id, "inputs"))
            if idempotency_key is None:
                raise
            replay = await self._replay(owner, idempotency_key, fingerprint)
            if replay is None:
                raise
            return Submission(replay, created=False)
        except asyncio.CancelledError:
            if handed_to_writer:
                # The job may be committed: keep its inputs, let the sweeper dispatch it.
                self._undispatched.add(job_id)
            else:
                await self.storage.delete_prefix(job_prefix(job_id, "inputs"))
            raise
        except BaseException:
            await self.storage.delete_prefix(job_prefix(job_id, "inputs"))
            raise
        await self._dispatch(job_id)
        return Submission(job, created=True)

    async def _replay(self, owner: str, key: str, fingerprint: str) -> Job | None:
        async with self.sessions() as session:
            earlier = await store.find_job_by_idempotency_key(session, owner, key)
        if earlier is None:
            return None
        if earlier.request_hash != fingerprint:
            raise IdempotencyConflictError(key)
        return earlier

    async def _checked_inputs(
        self, owner: str, job_id: uuid.UUID, request: JobRequest
    ) -> list[str]:
        """The keys of the sources and then the target, after checking they are media the
        pipeline accepts: sources must be images, the target an image or a video.

        Inline files are checked whole (decoded or probed; all of a job's in one thread
        hop) and stored under the job; uploads are checked by their first bytes, as they
        may be large (the worker checks them whole again), and claimed later, in the job's
        transaction.
        """
        expected: list[tuple[InputRef, MediaKind | None]] = [
            *((ref, MediaKind.IMAGE) for ref in request.sources),
            (request.target, None),
        ]
        inline = [(ref, expect) for ref, expect in expected if isinstance(ref, InlineFile)]
        for file, _ in inline:
            self._check_inline_size(file)
        if inline:
            await asyncio.to_thread(_inspect_inline, inline, self.settings.media_limits)
        keys: list[str] = []
        to_store: list[ObjectData] = []
        for position, (ref, expect) in enumerate(expected):
            if isinstance(ref, InlineFile):
                # The position keeps two inputs with one file name apart.
                key = job_key(job_id, "inputs", f"{position}-{ref.filename}")
                to_store.append(ObjectData(key, ref.data, ref.content_type))
                keys.append(key)
            else:
                keys.append(await self._checked_upload(owner, ref, expect))
        if to_store:
            # Every write settles before an error is raised, so the caller's clean-up of
            # the job's inputs never races a write still under way.
            await self.storage.put_many(to_store)
        return keys

    def _check_inline_size(self, ref: InlineFile) -> None:
        require_plain_filename(ref.filename)
        if len(ref.data) > self.settings.max_inline_upload_bytes:
            raise InvalidJobRequestError(
                f"{ref.filename!r} is larger than {self.settings.max_inline_upload_bytes} "
                "bytes; send it with POST /uploads instead"
            )

    async def _checked_upload(self, owner: str, ref: uuid.UUID, expect: MediaKind | None) -> str:
        limits = self.settings.media_limits
        async with self.sessions() as session:
            upload = await store.find_unused_upload(session, ref, owner)
        if upload is None:
            raise UploadNotFoundError(ref)
        try:
            info = await self.storage.stat(upload.key)
        except ObjectNotFoundError as exc:
            raise UploadNotFoundError(ref) from exc
        if info.size > upload.max_bytes:
            raise InvalidJobRequestError(
                f"upload {ref} is larger than the {upload.max_bytes} bytes it announced"
            )
        head = await self._head(upload.key)
        name = upload.key.rsplit("/", 1)[-1]
        await asyncio.to_thread(inspect_media_head, head, limits, name, expect=expect)
        return upload.key

    async def _head(self, key: str) -> bytes:
        """The first ``HEAD_BYTES`` of an object, streamed so the rest is never fetched."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.storage.iter_bytes(key):
            chunks.append(chunk)
            size += len(chunk)
            if size >= HEAD_BYTES:
                break
        return b"".join(chunks)[:HEAD_BYTES]

    async def _dispatch(self, job_id: uuid.UUID, delay_s: float = 0.0) -> None:
        try:
            await self.dispatcher.dispatch(job_id, delay_s=delay_s)
        except Exception as exc:
            # The job is safe in the store; the sweeper tries again.
            logger.warning("job %s: dispatch failed (%s); will retry", job_id, exc)
            self._undispatched.add(job_id)
        else:
            self._undispatched.discard(job_id)

    # --- uploads ------------------------------------------------------------------

    async def create_upload(
        self, owner: str, filename: str, content_type: str, size: int
    ) -> tuple[Upload, PresignedRequest]:
        if size > self.settings.max_upload_bytes:
            raise InvalidJobRequestError(
                f"{size} bytes is more than the {self.settings.max_upload_bytes} allowed"
            )
        require_plain_filename(filename)
        upload_id = uuid.uuid4()
        upload = Upload(
            id=upload_id,
            owner=owner,
            key=job_key(upload_id, "inputs", filename),
            content_type=content_type,
            max_bytes=size,
            created_at=self.clock(),
        )
        presigned = await self.storage.presign_put(
            upload.key, content_type, size, self.settings.upload_url_expiry
        )
        async with self.sessions.begin() as session:
            await store.add_upload(session, upload)
        return upload, presigned

    # --- reading ------------------------------------------------------------------

    async def get(self, owner: str | None, job_id: uuid.UUID) -> Job:
        """A job of ``owner`` (of anyone for ``None``: auditors)."""
        async with self.sessions() as session:
            return await store.get_job(session, job_id, owner=owner)

    async def list_jobs(
        self, owner: str | None, *, state: JobState | None, cursor: str | None, limit: int
    ) -> JobPage:
        before = decode_cursor(cursor) if cursor else None
        async with self.sessions() as session:
            jobs = await store.list_jobs(session, owner, state=state, before=before, limit=limit)
        next_cursor = encode_cursor(jobs[-1]) if len(jobs) == limit else None
        return JobPage(jobs, next_cursor)

    async def result(self, owner: str, job_id: uuid.UUID) -> tuple[Job, PresignedRequest | None]:
        """The finished job and a presigned GET (``None``: stream it from storage)."""
        job = await self.get(owner, job_id)
        if job.state is not JobState.SUCCEEDED or job.output_key is None:
            raise JobConflictError(f"job {job_id} has no result: it is {job.state}")
        if job.outputs_purged_at is not None:
            raise ResultGoneError(f"the result of job {job_id} was deleted after retention")
        presigned = await self.storage.presign_get(job.output_key, timedelta(minutes=5))
        return job, presigned

    # --- changing -----------------------------------------------------------------

    async def cancel(self, owner: str, job_id: uuid.UUID) -> Job:
        """Cancel a queued job now, or ask a running one to stop at its next frame."""
        async with self.sessions.begin() as session:
            await store.get_job(session, job_id, owner=owner)
            canceled_now = await store.transition(
                session, job_id, JobState.CANCELED, self.clock(), only_from=[JobState.QUEUED]
            )
            if not canceled_now:
                await store.request_cancel(session, job_id)
            job = await store.get_job(session, job_id)
        if canceled_now:
            await self._purge_inputs_later(job)
            await notify_job_ended(job, self.settings)
        if job.state in (JobState.SUCCEEDED, JobState.FAILED):
            raise JobConflictError(f"job {job_id} already ended: it {job.state}")
        return job

    async def _purge_inputs_later(self, job: Job) -> None:
        await purge_inputs(self.sessions, self.storage, job.id, self.clock)

    async def delete(self, owner: str | None, job_id: uuid.UUID) -> None:
        """Forget a job of ``owner`` (of anyone for ``None``: admins): stop it, delete its
        inputs and outputs, hide its row.

        A running job is asked to stop; whatever it still writes is purged by the sweeper,
        which also covers deleted jobs.
        """
        now = self.clock()
        async with self.sessions.begin() as session:
            await store.get_job(session, job_id, owner=owner)
            await store.transition(
                session, job_id, JobState.CANCELED, now, only_from=[JobState.QUEUED]
            )
            await store.request_cancel(session, job_id)
            await store.stamp(session, job_id, deleted_at=now)
            job = await store.get_job_including_deleted(session, job_id)
        for prefix in [*input_prefixes(job), job_prefix(job.id, "outputs")]:
            await self.storage.delete_prefix(prefix)
        if job.state.is_terminal():
            async with self.sessions.begin() as session:
                await store.stamp(session, job.id, inputs_purged_at=now, outputs_purged_at=now)

    # --- recovery -----------------------------------------------------------------

    async def redispatch_pending(self) -> list[uuid.UUID]:
        """Hand every queued job and every expired lease to the workers (start-up)."""
        async with self.sessions() as session:
            job_ids = [job.id for job in await store.due_jobs(session, self.clock())]
        for job_id in job_ids:
            await self._dispatch(job_id)
        return job_ids

    async def sweep(self) -> SweepReport:
        """Expire stale queued jobs, recover orphans, apply retention (runs periodically)."""
        now = self.clock()
        async with self.sessions.begin() as session:
            expired = await store.expire_unstarted(session, now)
        async with self.sessions() as session:
            # A queued job was dispatched when submitted (unless that failed); a running
            # one is due only when its lease ran out: its worker is gone.
            orphans = [
                job.id
                for job in await store.due_jobs(session, now)
                if job.id in self._undispatched or job.state is JobState.RUNNING
            ]
            to_purge = await store.jobs_with_inputs_to_purge(session)
            old_outputs = await store.jobs_with_outputs_to_purge(
                session, now - self.settings.output_retention
            )
        for job_id in expired:
            async with self.sessions() as session:
                await notify_job_ended(await store.get_job(session, job_id), self.settings)
        for job_id in orphans:
            await self._dispatch(job_id)
        for job in to_purge:
            await self._purge_inputs_later(job)
        for job in old_outputs:
            await self.storage.delete_prefix(job_prefix(job.id, "outputs"))
            async with self.sessions.begin() as session:
                await store.stamp(session, job.id, outputs_purged_at=now)
        uploads_purged = await self._purge_abandoned_uploads(now)
        return SweepReport(expired, orphans, [job.id for job in old_outputs], uploads_purged)

    async def _purge_abandoned_uploads(self, now: datetime) -> list[uuid.UUID]:
        """Delete uploads no job used within the upload URL's life plus a job's TTL."""
        cutoff = now - self.settings.upload_url_expiry - self.settings.job_ttl
        async with self.sessions() as session:
            uploads = await store.abandoned_uploads(session, cutoff)
        purged = []
        for upload in uploads:
            async with self.sessions.begin() as session:
                if not await store.delete_upload(session, upload.id):
                    continue
            await self.storage.delete_prefix(job_prefix(upload.id, "inputs"))
            purged.append(upload.id)
        return purged


def _inspect_inline(files: list[tuple[InlineFile, MediaKind | None]], limits: Limits) -> None:
    for ref, expect in files:
        inspect_media_bytes(ref.data, limits, ref.filename, expect=expect)
