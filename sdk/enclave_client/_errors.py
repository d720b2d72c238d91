"""Every error the client raises, in one tree::

    EnclaveError                      base of everything below
    ├── EnclaveConnectionError        the service (or an upload/download host) could not be
    │                                 reached: DNS, refused, TLS handshake, timeout
    ├── WaitTimeoutError              ``wait`` ran out of time; the job is still going
    ├── TransferError                 a presigned upload or download URL refused the transfer
    ├── UnexpectedResponseError       the service answered something this client cannot read
    ├── WebhookVerificationError      a webhook's signature or timestamp is not valid
    └── EnclaveAPIError               the service refused a request (RFC 9457 problem details)
        ├── BadRequestError           400
        ├── AuthenticationError       401: no verified client certificate
        ├── ForbiddenError            403: role or network policy
        ├── NotFoundError             404: no such job (or not yours)
        ├── ConflictError             409: job state, or an Idempotency-Key reused
        ├── GoneError                 410: result purged, upload URL expired
        ├── PayloadTooLargeError      413
        ├── InvalidRequestError       422: validation; ``errors`` lists each problem
        ├── RateLimitedError          429: ``retry_after`` seconds (rate limit, full queue)
        └── ServerError               5xx
            └── ServiceUnavailableError  503: a dependency of the service is down

Messages never contain presigned URL query strings (they carry credentials).
"""

from collections.abc import Mapping, Sequence
from typing import Any


class EnclaveError(Exception):
    """Base class of every error raised by ``enclave_client``."""


class EnclaveConnectionError(EnclaveError):
    """The request did not get an answer (connection, TLS or timeout failure)."""


class WaitTimeoutError(EnclaveError, TimeoutError):
    """``wait`` gave up before the job reached a terminal state."""

    def __init__(self, job_id: str, state: str, timeout: float) -> None:
        super().__init__(f"job {job_id} is still {state} after {timeout:g}s")
        self.job_id = job_id
        self.state = state


class TransferError(EnclaveError):
    """An object-storage URL (presigned PUT or GET) answered with an error status."""

    def __init__(self, action: str, host: str, status: int) -> None:
        super().__init__(f"{action} to {host} failed with HTTP {status}")
        self.status = status


class UnexpectedResponseError(EnclaveError):
    """A success status whose body is not what the API documents."""


class WebhookVerificationError(EnclaveError):
    """A webhook is not authentic, or too old (or too far in the future)."""


class EnclaveAPIError(EnclaveError):
    """The service answered with an error: the fields of its problem document."""

    def __init__(
        self,
        status: int,
        type: str,  # the RFC 9457 member's own name
        title: str,
        detail: str,
        *,
        instance: str | None = None,
        errors: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.instance = instance
        self.errors = [dict(error) for error in errors]

    @property
    def slug(self) -> str:
        """The last part of ``type`` (``job-not-found``, ``queue-full``, ...)."""
        return self.type.rstrip("/").rsplit("/", 1)[-1]


class BadRequestError(EnclaveAPIError):
    pass


class AuthenticationError(EnclaveAPIError):
    pass


class ForbiddenError(EnclaveAPIError):
    pass


class NotFoundError(EnclaveAPIError):
    pass


class ConflictError(EnclaveAPIError):
    pass


class GoneError(EnclaveAPIError):
    pass


class PayloadTooLargeError(EnclaveAPIError):
    pass


class InvalidRequestError(EnclaveAPIError):
    pass


class RateLimitedError(EnclaveAPIError):
    """429: wait ``retry_after`` seconds (when the service said) before trying again."""

    def __init__(
        self,
        status: int,
        type: str,
        title: str,
        detail: str,
        *,
        instance: str | None = None,
        errors: Sequence[Mapping[str, Any]] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, type, title, detail, instance=instance, errors=errors)
        self.retry_after = retry_after


class ServerError(EnclaveAPIError):
    pass


class ServiceUnavailableError(ServerError):
    pass


ERRORS_BY_STATUS: Mapping[int, type[EnclaveAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    413: PayloadTooLargeError,
    422: InvalidRequestError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}
