"""The one exception hierarchy of the service (storage errors live in ``app.storage.errors``).

::

    EnclaveError                        anything the service refuses or fails to do on purpose
    ├── JobNotFoundError                no such job for this caller (also: someone else's job)
    ├── UploadNotFoundError             a referenced upload does not exist for this caller
    ├── InvalidJobRequestError          a job request that is well-formed but unusable
    ├── JobConflictError                the job's state does not allow the action
    ├── IdempotencyConflictError        an Idempotency-Key reused with a different request
    ├── QueueFullError                  backpressure: too many queued jobs, retry later
    ├── ResultGoneError                 the job's output was purged by retention or deletion
    ├── ServiceNotReadyError            a dependency (DB, storage, broker) is unreachable
    └── NotAuthenticatedError           no caller identity could be established

``app.api.problems`` maps each of them (and the storage and pipeline errors that reach the
API) to an RFC 9457 problem document; nothing else chooses HTTP status codes.
"""


class EnclaveError(Exception):
    """Base of every error the service raises on purpose."""


class JobNotFoundError(EnclaveError):
    def __init__(self, job_id: object) -> None:
        super().__init__(f"no job {job_id}")
        self.job_id = job_id


class UploadNotFoundError(EnclaveError):
    def __init__(self, upload_id: object) -> None:
        super().__init__(f"no upload {upload_id} (or its file was never sent)")
        self.upload_id = upload_id


class InvalidJobRequestError(EnclaveError):
    """The request parsed, but cannot become a job (e.g. an upload already used)."""


class JobConflictError(EnclaveError):
    """The job is in a state that does not allow the requested action."""


class IdempotencyConflictError(EnclaveError):
    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used with a different request; "
            "use a new key for a new job"
        )
        self.key = key


class QueueFullError(EnclaveError):
    def __init__(self, queued: int, limit: int, retry_after_s: int) -> None:
        super().__init__(f"{queued} jobs are queued (limit {limit}); retry later")
        self.retry_after_s = retry_after_s


class ResultGoneError(EnclaveError):
    """The output existed but has been purged."""


class ServiceNotReadyError(EnclaveError):
    """A dependency the request needs is unreachable."""


class NotAuthenticatedError(EnclaveError):
    """No caller identity could be established for the request."""
