"""``AsyncEnclaveClient``: ``EnclaveClient``'s twin for asyncio (same methods, awaited).

The request building and response reading both clients share live in ``_protocol``; what
is left here is the I/O, which has to be written once per flavour (as httpx itself does).
"""

import asyncio
import inspect
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TextIO

import httpx

from enclave_client._errors import RateLimitedError, TransferError, WaitTimeoutError
from enclave_client._files import read_chunks_async, replacing
from enclave_client._models import (
    CompareResult,
    Job,
    JobOptions,
    JobPage,
    JobRef,
    JobState,
    Upload,
    job_id_of,
)
from enclave_client._progress import bar_for, is_news
from enclave_client._protocol import (
    DEFAULT_INLINE_LIMIT,
    Input,
    Submission,
    UploadTarget,
    content_type_of,
    download_path,
    host_of,
    job_path,
    json_body,
    raise_for_problem,
    redirect_location,
    resolve,
    transport_errors,
    upload_request,
    user_agent,
)
from enclave_client._tls import PathLike, service_ssl_context, storage_ssl_context

ProgressCallback = Callable[[Job], Awaitable[object] | object]


class AsyncEnclaveClient:
    """A connection to the Enclave service over mutual TLS, for asyncio.

    Takes the same arguments as ``EnclaveClient``; use it as ``async with``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        cert: PathLike | None = None,
        key: PathLike | None = None,
        ca: PathLike | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float | httpx.Timeout = 30.0,
        storage_verify: ssl.SSLContext | PathLike | bool = True,
        inline_upload_limit: int = DEFAULT_INLINE_LIMIT,
    ) -> None:
        context = service_ssl_context(cert=cert, key=key, ca=ca, ssl_context=ssl_context)
        headers = {"User-Agent": user_agent()}
        self._http = httpx.AsyncClient(
            base_url=base_url, verify=context, timeout=timeout, headers=headers
        )
        self._storage = httpx.AsyncClient(
            verify=storage_ssl_context(storage_verify), timeout=timeout, headers=headers
        )
        self._host = host_of(str(self._http.base_url))
        self._inline_limit = inline_upload_limit

    # --- lifecycle --------------------------------------------------------------------

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._storage.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- jobs -------------------------------------------------------------------------

    async def submit(
        self,
        source: Input | Sequence[Input],
        target: Input,
        *,
        options: JobOptions | Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
        ttl_seconds: int | None = None,
    ) -> Job:
        """Submit a job; see ``EnclaveClient.submit``."""
        plan = Submission.of(source, target, options, webhook_url, ttl_seconds)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if plan.fits_inline(self._inline_limit):
            files, data = await asyncio.to_thread(plan.multipart)
            response = await self._request("POST", "/jobs", files=files, data=data, headers=headers)
        else:
            uploads = [
                item if isinstance(item, Upload) else await self.upload(item)
                for item in plan.inputs
            ]
            body = plan.json_body(uploads)
            response = await self._request("POST", "/jobs", json=body, headers=headers)
        return Job.from_json(json_body(response))

    async def upload(self, path: PathLike) -> Upload:
        """Send one input file ahead of ``submit`` (which accepts the returned ``Upload``)."""
        file = Path(path)
        response = await self._request("POST", "/uploads", json=upload_request(file))
        target = UploadTarget.from_json(json_body(response), file, self._http.base_url)
        client = self._http if target.on_service else self._storage
        with transport_errors(host_of(target.url)):
            sent = await client.request(
                target.method,
                target.url,
                content=read_chunks_async(file),
                headers=target.request_headers(),
            )
        if target.on_service:
            raise_for_problem(sent)
        elif not sent.is_success:
            raise TransferError("upload", host_of(target.url), sent.status_code)
        return target.upload

    async def get(self, job: JobRef) -> Job:
        return Job.from_json(json_body(await self._request("GET", job_path(job))))

    async def wait(
        self,
        job: JobRef,
        *,
        # the sync client's signature; raising WaitTimeoutError says which state it was in
        timeout: float | None = None,  # noqa: ASYNC109
        poll_interval: float = 1.0,
        on_progress: ProgressCallback | None = None,
        progress_bar: bool | TextIO = False,
    ) -> Job:
        """Poll until the job is terminal; see ``EnclaveClient.wait``. ``on_progress`` may
        be a plain function or a coroutine function."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        bar = bar_for(progress_bar)
        previous: Job | None = None
        while True:
            pause = poll_interval
            try:
                current = await self.get(job)
            except RateLimitedError as error:
                pause = max(poll_interval, error.retry_after or 0.0)
            else:
                if is_news(previous, current):
                    if on_progress is not None:
                        called = on_progress(current)
                        if inspect.isawaitable(called):
                            await called
                    if bar is not None:
                        bar.update(current)
                previous = current
                if current.is_terminal:
                    return current
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    state = previous.state if previous else "unknown"
                    raise WaitTimeoutError(job_id_of(job), state, timeout or 0.0)
                pause = min(pause, left)
            await asyncio.sleep(pause)

    async def cancel(self, job: JobRef) -> Job:
        """Cancel now if queued; a running job stops at its next frame."""
        response = await self._request("POST", f"{job_path(job)}/cancel")
        return Job.from_json(json_body(response))

    async def delete(self, job: JobRef) -> None:
        """Stop the job and delete its inputs, output and record."""
        await self._request("DELETE", job_path(job))

    async def download(self, job: JobRef, path: PathLike) -> Path:
        """Save the job's output; see ``EnclaveClient.download``."""
        job_id, destination = job_id_of(job), Path(path)
        with transport_errors(self._host):
            async with self._http.stream("GET", f"{job_path(job)}/result") as response:
                if not response.is_redirect:
                    return await self._save(response, destination, job_id, on_service=True)
                url, on_service = resolve(self._http.base_url, redirect_location(response))
        client = self._http if on_service else self._storage
        with transport_errors(host_of(url)):
            async with client.stream("GET", url) as redirected:
                return await self._save(redirected, destination, job_id, on_service=on_service)

    async def _save(
        self, response: httpx.Response, path: Path, job_id: str, *, on_service: bool
    ) -> Path:
        if not response.is_success:
            if not on_service:
                raise TransferError("download", host_of(str(response.url)), response.status_code)
            await response.aread()
            raise_for_problem(response)
        destination = download_path(path, job_id, response)
        with replacing(destination) as file:
            async for chunk in response.aiter_bytes():
                await asyncio.to_thread(file.write, chunk)
        return destination

    async def iter_jobs(
        self, *, state: JobState | str | None = None, page_size: int = 50
    ) -> AsyncIterator[Job]:
        """Every job you may see, newest first, page by page as it goes."""
        async for page in self.list(state=state, limit=page_size):
            for job in page:
                yield job

    # --- other ------------------------------------------------------------------------

    async def compare(self, a: PathLike, b: PathLike) -> CompareResult:
        """Are the largest faces in two images the same person? The service stores nothing."""

        def read() -> dict[str, tuple[str, bytes, str]]:
            return {
                name: (file.name, file.read_bytes(), content_type_of(file))
                for name, file in (("a", Path(a)), ("b", Path(b)))
            }

        files = await asyncio.to_thread(read)
        return CompareResult.from_json(
            json_body(await self._request("POST", "/compare", files=files))
        )

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with transport_errors(self._host):
            response = await self._http.request(method, path, **kwargs)
        raise_for_problem(response)
        return response

    # Last: inside this class body, ``list`` names this method from here on.
    async def list(
        self,
        *,
        state: JobState | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> AsyncIterator[JobPage]:
        """Your jobs, newest first, one page of ``limit`` at a time; see ``EnclaveClient.list``."""
        first = True
        while True:
            params: dict[str, str | int] = {"limit": limit}
            if state is not None:
                params["state"] = JobState(state).value
            if cursor is not None:
                params["cursor"] = cursor
            response = await self._request("GET", "/jobs", params=params)
            page = JobPage.from_json(json_body(response))
            if page.items or first:
                yield page
            if page.next_cursor is None:
                return
            cursor, first = page.next_cursor, False
