"""The pipeline as the job service calls it: one narrow entry point, imported lazily.

``pipeline_process_file`` is a module-level function so it can be handed to spawned worker
processes (and replaced by a stand-in in tests that are about jobs, not faces).
"""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from pipeline.options import RunOptions, RunSummary


class ProcessFile(Protocol):
    """The pipeline's entry point (``pipeline.run.process_file``)."""

    def __call__(
        self,
        sources: Sequence[Path],
        target: Path,
        output: Path,
        options: RunOptions,
        *,
        on_progress: Callable[[float, str], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> RunSummary: ...


def pipeline_process_file(
    sources: Sequence[Path],
    target: Path,
    output: Path,
    options: RunOptions,
    *,
    on_progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> RunSummary:
    """The real pipeline, imported on first use (so only worker processes load models)."""
    from pipeline.run import process_file

    return process_file(
        sources, target, output, options, on_progress=on_progress, should_cancel=should_cancel
    )
