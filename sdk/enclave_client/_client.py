"""``EnclaveClient``: the blocking client (``AsyncEnclaveClient`` is its async twin)."""

import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TextIO

import httpx

from enclave_client._errors import RateLimitedError, TransferError, WaitTimeoutError
from enclave_client._files import read_chunks, replacing
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


class EnclaveClient:
    """A connection to the Enclave service over mutual TLS.

    ``cert``/``key`` are the client certificate and key (PEM) that identify you, ``ca`` the
    CA bundle that signed the service's certificate; or pass a ready ``ssl_context``.
    ``storage_verify`` is how presigned object-storage URLs are verified (they never get
    the client certificate). Inputs whose total size is at most ``inline_upload_limit``
    bytes travel inside ``POST /jobs``; larger ones go through ``POST /uploads``.
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
        self._http = httpx.Client(
            base_url=base_url, verify=context, timeout=timeout, headers=headers
        )
        self._storage = httpx.Client(
            verify=storage_ssl_context(storage_verify), timeout=timeout, headers=headers
        )
        self._host = host_of(str(self._http.base_url))
        self._inline_limit = inline_upload_limit

    # --- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()
        self._storage.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- jobs -------------------------------------------------------------------------

    def submit(
        self,
        source: Input | Sequence[Input],
        target: Input,
        *,
        options: JobOptions | Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
        ttl_seconds: int | None = None,
    ) -> Job:
        """Submit a job: the face(s) in ``source`` onto ``target`` (image or video).

        Local files are sent for you (inline, or through ``POST /uploads`` when large).
        With ``idempotency_key``, repeating the same request returns the same job.
        """
        plan = Submission.of(source, target, options, webhook_url, ttl_seconds)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if plan.fits_inline(self._inline_limit):
            files, data = plan.multipart()
            response = self._request("POST", "/jobs", files=files, data=data, headers=headers)
        else:
            uploads = [
                item if isinstance(item, Upload) else self.upload(item) for item in plan.inputs
            ]
            body = plan.json_body(uploads)
            response = self._request("POST", "/jobs", json=body, headers=headers)
        return Job.from_json(json_body(response))

    def upload(self, path: PathLike) -> Upload:
        """Send one input file ahead of ``submit`` (which accepts the returned ``Upload``)."""
        file = Path(path)
        response = self._request("POST", "/uploads", json=upload_request(file))
        target = UploadTarget.from_json(json_body(response), file, self._http.base_url)
        client = self._http if target.on_service else self._storage
        with transport_errors(host_of(target.url)):
            sent = client.request(
                target.method,
                target.url,
                content=read_chunks(file),
                headers=target.request_headers(),
            )
        if target.on_service:
            raise_for_problem(sent)
        elif not sent.is_success:
            raise TransferError("upload", host_of(target.url), sent.status_code)
        return target.upload

    def get(self, job: JobRef) -> Job:
        return Job.from_json(json_body(self._request("GET", job_path(job))))

    def wait(
        self,
        job: JobRef,
        *,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        on_progress: Callable[[Job], object] | None = None,
        progress_bar: bool | TextIO = False,
    ) -> Job:
        """Poll until the job is succeeded, failed or canceled, and return it.

        ``on_progress`` is called with each report that changed (state, stage, progress);
        ``progress_bar`` draws a bar on stderr (or on the stream given). Raises
        ``WaitTimeoutError`` after ``timeout`` seconds; the job itself goes on.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = bar_for(progress_bar)
        previous: Job | None = None
        while True:
            pause = poll_interval
            try:
                current = self.get(job)
            except RateLimitedError as error:
                pause = max(poll_interval, error.retry_after or 0.0)
            else:
                if is_news(previous, current):
                    if on_progress is not None:
                        on_progress(current)
                    if bar is not None:
                        bar.update(current)
                previous = current
                if current.is_terminal:
                    return current
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    state = previous.state if previous else "unknown"
                    raise WaitTimeoutError(job_id_of(job), state, timeout or 0.0)
                pause = min(pause, left)
            time.sleep(pause)

    def cancel(self, job: JobRef) -> Job:
        """Cancel now if queued; a running job stops at its next frame."""
        return Job.from_json(json_body(self._request("POST", f"{job_path(job)}/cancel")))

    def delete(self, job: JobRef) -> None:
        """Stop the job and delete its inputs, output and record."""
        self._request("DELETE", job_path(job))

    def download(self, job: JobRef, path: PathLike) -> Path:
        """Save the job's output at ``path`` (or inside it, if a directory); returns the file.

        The file appears only once complete. A redirect to object storage is followed
        without the client certificate: presigned URLs carry their own authorisation.
        """
        job_id, destination = job_id_of(job), Path(path)
        with (
            transport_errors(self._host),
            self._http.stream("GET", f"{job_path(job)}/result") as response,
        ):
            if not response.is_redirect:
                return self._save(response, destination, job_id, on_service=True)
            url, on_service = resolve(self._http.base_url, redirect_location(response))
        client = self._http if on_service else self._storage
        with transport_errors(host_of(url)), client.stream("GET", url) as redirected:
            return self._save(redirected, destination, job_id, on_service=on_service)

    def _save(self, response: httpx.Response, path: Path, job_id: str, *, on_service: bool) -> Path:
        if not response.is_success:
            if not on_service:
                raise TransferError("download", host_of(str(response.url)), response.status_code)
            response.read()
            raise_for_problem(response)
        destination = download_path(path, job_id, response)
        with replacing(destination) as file:
            for chunk in response.iter_bytes():
                file.write(chunk)
        return destination

    def iter_jobs(
        self, *, state: JobState | str | None = None, page_size: int = 50
    ) -> Iterator[Job]:
        """Every job you may see, newest first, page by page as it goes."""
        for page in self.list(state=state, limit=page_size):
            yield from page

    # --- other ------------------------------------------------------------------------

    def compare(self, a: PathLike, b: PathLike) -> CompareResult:
        """Are the largest faces in two images the same person? The service stores nothing."""
        files = {
            name: (file.name, file.read_bytes(), content_type_of(file))
            for name, file in (("a", Path(a)), ("b", Path(b)))
        }
        return CompareResult.from_json(json_body(self._request("POST", "/compare", files=files)))

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with transport_errors(self._host):
            response = self._http.request(method, path, **kwargs)
        raise_for_problem(response)
        return response

    # Last: inside this class body, ``list`` names this method from here on.
    def list(
        self,
        *,
        state: JobState | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Iterator[JobPage]:
        """Your jobs (everyone's for an auditor), newest first, one page of ``limit`` at a
        time; each request is made as the iteration reaches it."""
        first = True
        while True:
            params: dict[str, str | int] = {"limit": limit}
            if state is not None:
                params["state"] = JobState(state).value
            if cursor is not None:
                params["cursor"] = cursor
            page = JobPage.from_json(json_body(self._request("GET", "/jobs", params=params)))
            if page.items or first:
                yield page
            if page.next_cursor is None:
                return
            cursor, first = page.next_cursor, False
