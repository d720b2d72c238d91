"""onnxruntime sessions and execution providers, with an honest report of what was applied.

Users name providers the way FaceFusion's ``--execution-providers`` does (``cuda``,
``tensorrt``, ``cpu``, ...), in order of preference. What this onnxruntime build lacks
falls away and is reported; the CPU provider is always the last resort, so a run never
fails just because a GPU is missing.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import ModelError, ProviderError

if TYPE_CHECKING:
    import onnxruntime as ort

logger = logging.getLogger(__name__)

PROVIDER_NAMES: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "directml": "DmlExecutionProvider",
}
"""Short name (as on the command line) → onnxruntime provider name."""

_SHORT_NAMES = {provider: short for short, provider in PROVIDER_NAMES.items()}


@dataclass(frozen=True)
class ProviderChoice:
    """Providers as asked for, as they will be applied, and those this build lacks (short names)."""

    requested: tuple[str, ...]
    applied: tuple[str, ...]
    unavailable: tuple[str, ...]

    @property
    def onnxruntime_providers(self) -> list[str]:
        """``applied`` in onnxruntime's spelling, in order, for ``InferenceSession``."""
        return [PROVIDER_NAMES[name] for name in self.applied]


def normalise_provider_name(name: str) -> str:
    """``CUDA``, ``cuda`` and ``CUDAExecutionProvider`` all mean ``cuda``."""
    cleaned = name.strip()
    if cleaned in _SHORT_NAMES:
        return _SHORT_NAMES[cleaned]
    if cleaned.lower() in PROVIDER_NAMES:
        return cleaned.lower()
    raise ProviderError(
        f"unknown execution provider {name!r}; choose from: {', '.join(PROVIDER_NAMES)}"
    )


def available_providers() -> tuple[str, ...]:
    """Short names of the providers this onnxruntime build offers."""
    import onnxruntime as ort

    return tuple(
        _SHORT_NAMES[name] for name in ort.get_available_providers() if name in _SHORT_NAMES
    )


def resolve_providers(
    requested: Sequence[str], available: Sequence[str] | None = None
) -> ProviderChoice:
    """Keep the requested providers this build has, in order, then CPU as the last resort.

    ``available`` (short names) defaults to what onnxruntime reports; tests pass their own.
    """
    wanted: list[str] = []
    for name in requested or ("cpu",):
        short = normalise_provider_name(name)
        if short not in wanted:
            wanted.append(short)
    offered = set(available_providers() if available is None else available)
    applied = [name for name in wanted if name in offered and name != "cpu"]
    applied.append("cpu")
    unavailable = tuple(name for name in wanted if name not in offered)
    if unavailable:
        logger.warning(
            "execution providers %s are not available in this onnxruntime build; using %s",
            ", ".join(unavailable),
            ", ".join(applied),
        )
    return ProviderChoice(tuple(wanted), tuple(applied), unavailable)


def create_session(
    path: Path, choice: ProviderChoice, *, threads: int | None = None
) -> "ort.InferenceSession":
    """An inference session on ``choice.applied``; logs the providers it actually got.

    onnxruntime may still drop a provider it lists as available (a CUDA build without
    the CUDA libraries, say); ``session_providers(session)`` tells the truth afterwards.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    # 3 = errors only: the bundled files make onnxruntime print pages of harmless warnings
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No busy-waiting between runs: the pipeline keeps decode, encode and inference threads
    # busy at once, and spinning pool threads would take the cores they need (measured in
    # docs/performance.md: about 40% less CPU per frame).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=choice.onnxruntime_providers
        )
    except Exception as error:  # onnxruntime raises bare RuntimeError subclasses
        raise ModelError(f"onnxruntime cannot load {path.name}: {error}") from error
    got = session_providers(session)
    if got != choice.applied:
        logger.warning(
            "%s: asked for providers %s, onnxruntime applied %s",
            path.name,
            ", ".join(choice.applied),
            ", ".join(got),
        )
    return session


def session_providers(session: "ort.InferenceSession") -> tuple[str, ...]:
    """Short names of the providers a session really runs on, in priority order."""
    return tuple(_SHORT_NAMES.get(name, name) for name in session.get_providers())
