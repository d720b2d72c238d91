"""Errors raised by every storage backend.

::

    StorageError                      anything the storage layer refuses or fails to do
    ├── ObjectNotFoundError           the key holds no object
    ├── StorageUnavailableError       transient: connection refused, timeout, 5xx (retry later)
    ├── StorageAccessDeniedError      the backend refused our credentials or permissions
    ├── InvalidKeyError               a key or prefix that could escape its namespace
    ├── ObjectTooLargeError           an upload went past its byte limit (nothing was kept)
    └── InvalidUploadTokenError       a local upload token that is forged or malformed
        └── UploadTokenExpiredError   a genuine token past its expiry

The job service retries ``StorageUnavailableError`` only; every other error is final.
"""


class StorageError(Exception):
    """Base class of every storage failure."""


class ObjectNotFoundError(StorageError):
    """The key holds no object."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object at key {key!r}")
        self.key = key


class StorageUnavailableError(StorageError):
    """The backend could not be reached or failed on its side; retrying may succeed."""


class StorageAccessDeniedError(StorageError):
    """The backend refused the request (credentials, signature or permissions)."""


class InvalidKeyError(StorageError, ValueError):
    """A key or prefix that is not a safe, normalised object name."""


class ObjectTooLargeError(StorageError):
    """An upload exceeded the byte limit it was granted."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"upload exceeds its limit of {max_bytes} bytes")
        self.max_bytes = max_bytes


class InvalidUploadTokenError(StorageError):
    """An upload token whose signature or format is wrong."""


class UploadTokenExpiredError(InvalidUploadTokenError):
    """An upload token that was genuine but has expired."""
