"""Stand-ins for ``pipeline.run.process_file`` where a test is about the job service, not
about faces: they honour the same contract (progress, cancellation, errors, an output file
at the given path) in milliseconds. Module-level functions so spawned worker processes can
import them. The real pipeline runs in the end-to-end tests."""

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import NoFaceError, ProcessingCanceled
from pipeline.options import RunOptions, RunSummary


def png_bytes(seed: int = 0, size: int = 16) -> bytes:
    """A small, real PNG image (distinct per seed)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return encoded.tobytes()


def copy_target(
    sources: Sequence[Path],
    target: Path,
    output: Path,
    options: RunOptions,
    *,
    on_progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> RunSummary:
    """'Swaps' by copying the target: output bytes equal the target's."""
    assert sources and all(path.is_file() for path in sources)
    if on_progress:
        on_progress(0.5, "swap")
    shutil.copyfile(target, output)
    return RunSummary("image", 1, 1, 1, 0.001, ("cpu",), ("double",))


def no_face(
    sources: Sequence[Path],
    target: Path,
    output: Path,
    options: RunOptions,
    *,
    on_progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> RunSummary:
    raise NoFaceError(f"no face found in the target {target.name}")


def frames_until_canceled(
    sources: Sequence[Path],
    target: Path,
    output: Path,
    options: RunOptions,
    *,
    on_progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> RunSummary:
    """A 'video' of up to 600 frames of 20 ms that checks for cancellation per frame."""
    for frame in range(600):
        if should_cancel and should_cancel():
            raise ProcessingCanceled(f"canceled at frame {frame}")
        if on_progress:
            on_progress(frame / 600, "swap")
        time.sleep(0.02)
    shutil.copyfile(target, output)
    return RunSummary("video", 600, 600, 600, 12.0, ("cpu",), ("double",))


CRASH_MARKER_VARIABLE = "ENCLAVE_TEST_CRASH_MARKER"


def crash_once(
    sources: Sequence[Path],
    target: Path,
    output: Path,
    options: RunOptions,
    *,
    on_progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> RunSummary:
    """The worker process dies (like an OOM kill) the first time; later runs succeed."""
    import os

    marker = Path(os.environ[CRASH_MARKER_VARIABLE])
    if not marker.exists():
        marker.touch()
        os._exit(137)
    return copy_target(sources, target, output, options, on_progress=on_progress)


def always_crash(
    sources: Sequence[Path],
    target: Path,
    output: Path,
    options: RunOptions,
    *,
    on_progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> RunSummary:
    """A poison input: the worker process dies every time."""
    import os

    os._exit(137)


def report_priority(
    sources: Sequence[Path],
    target: Path,
    output: Path,
    options: RunOptions,
    *,
    on_progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> RunSummary:
    """The output is the nice value of every thread of the worker process, as text."""
    import os

    threads = [int(name) for name in os.listdir("/proc/self/task")]
    output.write_text(" ".join(str(os.getpriority(os.PRIO_PROCESS, t)) for t in threads))
    return RunSummary("image", 1, 1, 1, 0.001, ("cpu",), ("double",))


SLOW_TARGET_SEED = 99
"""``copy_target_slow_for_one``: the target (``png_bytes(SLOW_TARGET_SEED)``) that takes long."""


def copy_target_slow_for_one(
    sources: Sequence[Path],
    target: Path,
    output: Path,
    options: RunOptions,
    *,
    on_progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> RunSummary:
    """``copy_target``, but the one marked target takes 20 s (or until canceled): a long
    video among small images."""
    if target.read_bytes() == png_bytes(SLOW_TARGET_SEED):
        for _ in range(1000):
            if should_cancel and should_cancel():
                raise ProcessingCanceled("canceled")
            time.sleep(0.02)
    return copy_target(sources, target, output, options, on_progress=on_progress)
