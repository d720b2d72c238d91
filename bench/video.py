"""Video fps: Enclave's ``process_file`` against the reference loop, same models, one run.

    python -m bench.video            # 720p and 1080p, 1 and 3 faces, 60 frames each
    python -m bench.video --quick    # 720p, 1 face, 5 frames (the smoke test)

Both sides use the same RetinaFace detector file and the same inswapper_128-contract
model (generated, realistic cost), loaded before timing, on onnxruntime's default
thread settings (intra-op threads = physical cores), in the same process so machine load
hits both. The reference is ``bench.reference.ReferenceLoop`` (OpenCV I/O, insightface's
``INSwapper.get`` with full-frame paste); Enclave is ``pipeline.run.process_file`` with
the box mask (the reference has no region mask either), then its bundled weight-free
landmark swapper with its default masks, for Enclave alone.
"""

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import onnxruntime as ort

from bench.reference import ReferenceLoop
from bench.report import header, ratio_line, table
from bench.workload import (
    ARCFACE,
    ONE_FACE,
    SWAPPER,
    THREE_FACES,
    Scene,
    prepare_models,
    write_clip,
)
from pipeline.engine import Engine, build_engine
from pipeline.models import ModelRegistry
from pipeline.models.runtime import PROVIDER_NAMES, normalise_provider_name
from pipeline.options import RunOptions
from pipeline.run import process_file
from pipeline.types import VisionFrame
from pipeline.video_encoder import VideoWriter
from tests.pipeline.photos import read, write_astronaut


@dataclass(frozen=True)
class Clip:
    resolution: str
    scene: Scene
    path: Path

    @property
    def label(self) -> str:
        return f"{self.resolution} {self.scene.faces} face{'s' if self.scene.faces > 1 else ''}"


@dataclass(frozen=True)
class Timing:
    frames: int
    faces: int
    seconds: float
    cpu_seconds: float
    """CPU time of the whole process (every thread) during the run: less sensitive than
    wall time to what else the machine is doing."""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    @property
    def cpu_ms_per_frame(self) -> float:
        return self.cpu_seconds * 1000 / self.frames


def enclave_options(
    model_dir: Path,
    swapper: str,
    providers: tuple[str, ...],
    preset: str = RunOptions.output_video_preset,
    quality: int = RunOptions.output_video_quality,
) -> RunOptions:
    encoding = {"output_video_preset": preset, "output_video_quality": quality}
    if swapper == "landmark":
        return RunOptions(model_dir=model_dir, execution_providers=providers, **encoding)
    return RunOptions(
        model_dir=model_dir,
        face_swapper_model=swapper,
        face_recognizer_model=ARCFACE,
        face_mask_types=("box",),
        allow_non_commercial_models=True,
        execution_providers=providers,
        **encoding,
    )


def size_mb(path: Path) -> float:
    return path.stat().st_size / 1e6


def read_frames(path: Path) -> list[VisionFrame]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return frames
            frames.append(frame)
    finally:
        capture.release()


def encoder_fidelity(clip: Path, work: Path, preset: str, quality: int) -> list[list[str]]:
    """The clip's own frames (no swap) through each side's encoder: file size and PSNR
    against the frames, so output sizes are compared at a known quality."""
    frames = read_frames(clip)
    height, width = frames[0].shape[:2]
    fps = Fraction(25)
    mp4v = work / "fidelity-mp4v.mp4"
    writer = cv2.VideoWriter(
        str(mp4v), cv2.VideoWriter.fourcc(*"mp4v"), float(fps), (width, height)
    )
    for frame in frames:
        writer.write(frame)
    writer.release()
    x264 = work / "fidelity-x264.mp4"
    encoder = VideoWriter(
        x264,
        container_format="mp4",
        encoder="libx264",
        fps=fps,
        quality=quality,
        preset=preset,
        audio_source=None,
        video_start=0.0,
    )
    for frame in frames:
        encoder.write(frame)
    encoder.finish()
    rows = []
    for label, path in [
        ("reference: mp4v, OpenCV defaults", mp4v),
        (f"enclave: libx264 {preset} quality {quality}", x264),
    ]:
        decoded = read_frames(path)
        psnr = statistics.fmean(cv2.PSNR(a, b) for a, b in zip(frames, decoded, strict=True))
        rows.append([label, f"{size_mb(path):.2f}", f"{psnr:.1f}"])
    return rows


def time_enclave(engine: Engine, source: Path, clip: Path, output: Path) -> Timing:
    started, cpu = time.perf_counter(), time.process_time()
    summary = process_file([source], clip, output, engine.options, engine=engine)
    return Timing(
        summary.frames,
        summary.faces_swapped,
        time.perf_counter() - started,
        time.process_time() - cpu,
    )


def time_reference(loop: ReferenceLoop, source: Path, clip: Path, output: Path) -> Timing:
    face = loop.source_face(read(source))
    started, cpu = time.perf_counter(), time.process_time()
    frames, faces = loop.run_video(face, clip, output)
    return Timing(frames, faces, time.perf_counter() - started, time.process_time() - cpu)


@contextlib.contextmanager
def sessions_without_spinning(enabled: bool) -> Iterator[None]:
    """While enabled, every new onnxruntime session's idle intra-op threads sleep, not spin.

    An experiment knob: it showed what the one-line change to
    ``pipeline.models.runtime.create_session`` would give before it was made
    (docs/performance.md); Enclave's sessions no longer spin, and ``--no-spinning
    reference`` shows what the same setting does for the reference loop.
    """
    if not enabled:
        yield
        return
    original = ort.SessionOptions

    class SleepingSessionOptions(original):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.add_session_config_entry("session.intra_op.allow_spinning", "0")

    ort.SessionOptions = SleepingSessionOptions
    try:
        yield
    finally:
        ort.SessionOptions = original


def median_timing(runs: list[Timing]) -> Timing:
    middle = statistics.median_low(run.seconds for run in runs)
    return next(run for run in runs if run.seconds == middle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="720p, 1 face, 5 frames")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument(
        "--first-clip-only", action="store_true", help="only 720p 1 face (the target's clip)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="interleaved runs; median shown")
    parser.add_argument("--execution-providers", nargs="+", default=["cpu"])
    parser.add_argument("--work", type=Path, help="keep models and clips here (default: temp)")
    parser.add_argument(
        "--no-spinning",
        choices=["enclave", "reference", "both"],
        help="experiment: build that side's onnxruntime sessions with allow_spinning=0",
    )
    parser.add_argument(
        "--output-video-preset",
        default=RunOptions.output_video_preset,
        help="libx264 preset of both Enclave sides (Enclave's default: %(default)s)",
    )
    parser.add_argument(
        "--output-video-quality",
        type=int,
        default=RunOptions.output_video_quality,
        help="0-100 as in `enclave run` (libx264 CRF = 51 - 0.51 x quality; default "
        "%(default)s, FaceFusion's); lower it to compare at the reference's file size",
    )
    parser.add_argument(
        "--profile",
        choices=["reference", "enclave", "landmark"],
        help="run only this side on the first clip (to run under py-spy); prints no ratio",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as temporary:
        work = args.work or Path(temporary)
        return run(args, work)


def run(args: argparse.Namespace, work: Path) -> int:
    frames = 5 if args.quick else args.frames
    providers = tuple(args.execution_providers)
    ort_providers = [PROVIDER_NAMES[normalise_provider_name(name)] for name in providers]
    model_dir = prepare_models(work / "models")
    registry = ModelRegistry(model_dir, allow_non_commercial=True)
    source = write_astronaut(work)
    grid = [("720p", ONE_FACE)]
    if not args.quick and not args.first_clip_only:
        grid += [("720p", THREE_FACES), ("1080p", ONE_FACE), ("1080p", THREE_FACES)]
    clips = [
        Clip(res, scene, write_clip(work / f"{res}-{scene.faces}-{frames}.mp4", scene, res, frames))
        for res, scene in grid
    ]
    quiet_reference = args.no_spinning in ("reference", "both")
    quiet_enclave = args.no_spinning in ("enclave", "both")
    with sessions_without_spinning(quiet_reference):
        reference = ReferenceLoop(
            registry.path("retinaface"),
            registry.path(ARCFACE),
            registry.path(SWAPPER),
            ort_providers,
        )
    with sessions_without_spinning(quiet_enclave):
        encoding = (args.output_video_preset, args.output_video_quality)
        inswapper = build_engine(enclave_options(model_dir, SWAPPER, providers, *encoding))
        landmark = build_engine(enclave_options(model_dir, "landmark", providers, *encoding))
    sides: dict[str, Callable[[Path, Path], Timing]] = {
        "reference": lambda clip, out: time_reference(reference, source, clip, out),
        "enclave": lambda clip, out: time_enclave(inswapper, source, clip, out),
        "landmark": lambda clip, out: time_enclave(landmark, source, clip, out),
    }
    if args.profile:
        timing = sides[args.profile](clips[0].path, work / "profile.mp4")
        print(f"{args.profile} {clips[0].label}: {timing.fps:.2f} fps")
        return 0
    warm = write_clip(work / "warm-up.mp4", ONE_FACE, "720p", 3)
    for name, side in sides.items():
        side(warm, work / f"warm-{name}.mp4")

    header(
        "video fps: Enclave process_file vs the reference loop (cv2 + INSwapper.get paste_back)",
        [
            f"providers {', '.join(providers)}; onnxruntime default threads on both sides; "
            f"--no-spinning {args.no_spinning or 'off'}; "
            f"{frames} frames per clip, median of {args.repeat} interleaved run(s)",
            "same detector (bundled RetinaFace) and inswapper_128-contract model (realistic) "
            "on both sides; enclave: box mask, libx264 "
            f"{args.output_video_preset} quality {args.output_video_quality}; "
            "reference: mp4v (OpenCV defaults)",
        ],
    )
    rows, ratios = [], {}
    for clip in clips:
        runs: dict[str, list[Timing]] = {name: [] for name in sides}
        for _ in range(args.repeat):
            for name, side in sides.items():
                runs[name].append(side(clip.path, work / f"out-{name}.mp4"))
        best = {name: median_timing(timings) for name, timings in runs.items()}
        ratio = best["enclave"].fps / best["reference"].fps
        ratios[clip.label] = ratio
        ref_mb = size_mb(work / "out-reference.mp4")
        enclave_mb = size_mb(work / "out-enclave.mp4")
        rows.append(
            [
                clip.label,
                best["reference"].frames,
                f"{best['reference'].fps:.2f}",
                f"{best['enclave'].fps:.2f}",
                f"{ratio:.2f}x",
                f"{best['landmark'].fps:.2f}",
                f"{best['reference'].faces}/{best['enclave'].faces}/{best['landmark'].faces}",
                f"{best['reference'].cpu_ms_per_frame:.0f}",
                f"{best['enclave'].cpu_ms_per_frame:.0f}",
                f"{best['reference'].cpu_ms_per_frame / best['enclave'].cpu_ms_per_frame:.2f}x",
                f"{ref_mb:.2f}/{enclave_mb:.2f}",
            ]
        )
    table(
        [
            "clip",
            "frames",
            "reference fps",
            "enclave fps",
            "enclave/ref",
            "landmark fps",
            "faces swapped r/e/l",
            "ref cpu ms/frame",
            "enclave cpu ms/frame",
            "cpu ref/enclave",
            "output MB ref/enclave",
        ],
        rows,
    )
    header(
        "encoders alone on the 720p 1-face clip's frames (no swap): size and fidelity",
        ["PSNR of the decoded file against the frames written, mean over frames"],
    )
    table(
        ["encoder", "MB", "PSNR dB"],
        encoder_fidelity(clips[0].path, work, args.output_video_preset, args.output_video_quality),
    )
    ratio_line("enclave/reference fps at 720p 1 face", ratios["720p 1 face"], ">= 3x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
