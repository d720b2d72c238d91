"""Model manifest, registry and onnxruntime sessions.

``ModelRegistry`` answers "which models exist and where are their verified files";
``resolve_providers`` / ``create_session`` turn a file into an inference session on the
execution providers the user asked for. Importing this package loads neither onnx nor
onnxruntime; they are imported when a session is created or a model materialised.
"""

from pipeline.models.manifest import KINDS, KindDefaults, ModelFile, ModelSpec, ModelTask
from pipeline.models.registry import ModelRegistry
from pipeline.models.runtime import (
    PROVIDER_NAMES,
    ProviderChoice,
    available_providers,
    create_session,
    resolve_providers,
    session_providers,
)
from pipeline.models.verification import FileStatus, VerificationResult

__all__ = [
    "KINDS",
    "PROVIDER_NAMES",
    "FileStatus",
    "KindDefaults",
    "ModelFile",
    "ModelRegistry",
    "ModelSpec",
    "ModelTask",
    "ProviderChoice",
    "VerificationResult",
    "available_providers",
    "create_session",
    "resolve_providers",
    "session_providers",
]
