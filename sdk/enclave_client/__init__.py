"""Python client for the Enclave face-swap service.

::

    from enclave_client import EnclaveClient

    with EnclaveClient("https://enclave.internal", cert="me.pem", key="me.key", ca="ca.pem") as c:
        job = c.submit(source="face.jpg", target="group.jpg")
        job = c.wait(job, progress_bar=True)
        c.download(job, "swapped.jpg")

``AsyncEnclaveClient`` has the same methods for asyncio. Errors are ``EnclaveError``s; the
service's refusals are ``EnclaveAPIError``s with the problem document's fields.
"""

from enclave_client._async_client import AsyncEnclaveClient
from enclave_client._client import EnclaveClient
from enclave_client._errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    EnclaveAPIError,
    EnclaveConnectionError,
    EnclaveError,
    ForbiddenError,
    GoneError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
    TransferError,
    UnexpectedResponseError,
    WaitTimeoutError,
    WebhookVerificationError,
)
from enclave_client._models import (
    CompareResult,
    Job,
    JobError,
    JobOptions,
    JobPage,
    JobRef,
    JobState,
    Upload,
)
from enclave_client._progress import ProgressBar
from enclave_client._version import __version__
from enclave_client._webhooks import verify_webhook

__all__ = [
    "AsyncEnclaveClient",
    "AuthenticationError",
    "BadRequestError",
    "CompareResult",
    "ConflictError",
    "EnclaveAPIError",
    "EnclaveClient",
    "EnclaveConnectionError",
    "EnclaveError",
    "ForbiddenError",
    "GoneError",
    "InvalidRequestError",
    "Job",
    "JobError",
    "JobOptions",
    "JobPage",
    "JobRef",
    "JobState",
    "NotFoundError",
    "PayloadTooLargeError",
    "ProgressBar",
    "RateLimitedError",
    "ServerError",
    "ServiceUnavailableError",
    "TransferError",
    "UnexpectedResponseError",
    "Upload",
    "WaitTimeoutError",
    "WebhookVerificationError",
    "__version__",
    "verify_webhook",
]
