"""The one exception hierarchy of ``pipeline``.

    PipelineError
    ├── ModelError
    │   ├── ModelNotFoundError       a manifest entry or its file is missing
    │   ├── ModelIntegrityError      a file's SHA-256 differs from the manifest
    │   └── ModelLicenceError        a non-commercial model loaded without acknowledgement
    ├── InputError                   the caller's media is unusable (maps to a 4xx / exit 2)
    │   ├── UnsupportedMediaError    not an image or video we read (decided by magic bytes)
    │   ├── CorruptMediaError        truncated or undecodable
    │   ├── MediaTooLargeError       over the pixel, resolution or duration limit
    │   └── NoFaceError              no face where one is required
    ├── ProcessingCanceled           the caller asked to stop
    └── ProviderError                no requested execution provider is usable

Messages are written for the person who has to act on them.
"""


class PipelineError(Exception):
    """Base of every error ``pipeline`` raises on purpose."""


class ModelError(PipelineError):
    """A model cannot be used."""


class ModelNotFoundError(ModelError):
    """A manifest entry or its file is missing."""


class ModelIntegrityError(ModelError):
    """A model file's SHA-256 does not match the manifest."""


class ModelLicenceError(ModelError):
    """A model not cleared for commercial use was requested without acknowledgement."""


class InputError(PipelineError):
    """The caller's input cannot be processed; retrying will not help."""


class UnsupportedMediaError(InputError):
    """The file is not an image or video format we accept."""


class CorruptMediaError(InputError):
    """The file is truncated or cannot be decoded."""


class MediaTooLargeError(InputError):
    """The media exceeds a configured pixel, resolution or duration limit."""


class NoFaceError(InputError):
    """No face was found where one is required."""


class ProcessingCanceled(PipelineError):  # noqa: N818 - a signal, not a failure
    """Processing stopped because cancellation was requested."""


class ProviderError(PipelineError):
    """None of the requested execution providers is available."""
