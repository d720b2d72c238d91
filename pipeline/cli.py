"""``enclave run`` (FaceFusion-compatible flags) and the ``enclave models`` commands."""

import argparse
import os
import sys
from pathlib import Path

from pipeline.models.cli import default_model_dir
from pipeline.models.cli import register as register_models
from pipeline.options import (
    FaceSelectorMode,
    FaceSelectorOrder,
    FrameProcessor,
    Limits,
    RunOptions,
    RunSummary,
)
from pipeline.video_encoder import PRESETS

SubParsers = "argparse._SubParsersAction[argparse.ArgumentParser]"

OBSOLETE_FLAGS = {
    "temp_frame_format": "--temp-frame-format",
    "temp_frame_quality": "--temp-frame-quality",
}
"""FaceFusion flags for its frame files on disk; Enclave streams frames, so they do nothing."""


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    register_run(subparsers)
    register_models(subparsers)


def register_run(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "run",
        help="swap faces in an image or video",
        description="Swap the source face into a target image or video, offline.",
    )
    parser.add_argument(
        "-s",
        "--source",
        "--source-paths",
        dest="sources",
        nargs="+",
        type=Path,
        default=[],
        help="source image(s) with the face to use",
    )
    parser.add_argument(
        "-t",
        "--target",
        "--target-path",
        dest="target",
        type=Path,
        required=True,
        help="target image or video",
    )
    parser.add_argument(
        "-o",
        "--output",
        "--output-path",
        dest="output",
        type=Path,
        required=True,
        help="output file (its suffix picks the format)",
    )
    parser.add_argument(
        "--frame-processors",
        nargs="+",
        default=["face_swapper"],
        choices=[processor.value for processor in FrameProcessor],
    )
    parser.add_argument(
        "--execution-providers",
        nargs="+",
        default=["cpu"],
        help="in order of preference, e.g. cuda tensorrt cpu",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="model directory (default: $ENCLAVE_MODEL_DIR or the user data dir)",
    )
    parser.add_argument(
        "--allow-non-commercial-models",
        action="store_true",
        help="acknowledge loading models whose licence forbids commercial use",
    )
    models = parser.add_argument_group("models")
    models.add_argument(
        "--face-detector-model",
        default="retinaface",
        help="retinaface (bundled), yunet (bundled) or a provisioned scrfd",
    )
    models.add_argument("--face-detector-score", type=_fraction, default=0.5)
    models.add_argument(
        "--face-detector-interval",
        type=_positive,
        default=5,
        help="in videos, detect every N frames and track faces in between (1: every frame)",
    )
    models.add_argument(
        "--face-recognizer-model",
        default=None,
        help="sface (bundled, default) or a provisioned arcface",
    )
    models.add_argument(
        "--face-swapper-model",
        default="landmark",
        help="landmark (weight-free, default) or a provisioned inswapper_128",
    )
    models.add_argument("--face-enhancer-model", default=None)
    models.add_argument("--frame-enhancer-model", default="realesrgan_x4plus")
    models.add_argument(
        "--frame-enhancer-scale",
        type=int,
        default=4,
        choices=[1, 2, 3, 4],
        help="output size relative to the input (the model upscales x4; 1 keeps the size)",
    )
    selection = parser.add_argument_group("face selection")
    selection.add_argument(
        "--face-selector-mode", default="many", choices=[mode.value for mode in FaceSelectorMode]
    )
    selection.add_argument(
        "--face-selector-order",
        default="left-right",
        choices=[order.value for order in FaceSelectorOrder],
    )
    selection.add_argument("--reference-face-position", type=_non_negative, default=0)
    selection.add_argument("--reference-face-distance", type=_distance, default=0.6)
    selection.add_argument(
        "--reference-face-path",
        type=Path,
        default=None,
        help="an image of the person to replace (reference mode)",
    )
    masks = parser.add_argument_group("masks")
    masks.add_argument(
        "--face-mask-types", nargs="+", default=["box", "region"], choices=["box", "region"]
    )
    masks.add_argument("--face-mask-blur", type=_fraction, default=0.3)
    masks.add_argument(
        "--face-mask-padding",
        type=_non_negative,
        nargs="+",
        default=[0],
        help="1, 2 or 4 values in percent (top right bottom left)",
    )
    output = parser.add_argument_group("output")
    output.add_argument("--trim-frame-start", type=_non_negative, default=None)
    output.add_argument("--trim-frame-end", type=_non_negative, default=None)
    output.add_argument("--keep-fps", action=argparse.BooleanOptionalAction, default=True)
    output.add_argument(
        "--output-video-encoder",
        default="libx264",
        choices=["libx264", "libx265", "libvpx-vp9", "mpeg4"],
    )
    output.add_argument("--output-video-quality", type=_percent, default=80)
    output.add_argument("--output-video-preset", default="veryfast", choices=PRESETS)
    output.add_argument("--output-image-quality", type=_percent, default=90)
    output.add_argument(
        "--max-pixels",
        type=_positive,
        default=Limits().max_image_pixels,
        help="refuse images with more pixels than this",
    )
    for dest, flag in OBSOLETE_FLAGS.items():
        parser.add_argument(flag, dest=dest, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    from pipeline.run import process_file

    for dest, flag in OBSOLETE_FLAGS.items():
        if getattr(args, dest) is not None:
            print(
                f"enclave: note: {flag} is accepted for FaceFusion compatibility but not "
                "needed: frames stream through memory and are never written to disk",
                file=sys.stderr,
            )
    options = options_from_args(args)
    bar = None if args.no_progress or not sys.stderr.isatty() else _progress_bar()
    try:
        summary = process_file(
            args.sources,
            args.target,
            args.output,
            options,
            on_progress=bar.update if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.close()
    print(format_summary(args.output, summary))
    return 0


def options_from_args(args: argparse.Namespace) -> RunOptions:
    """``RunOptions`` from parsed ``run`` flags (pure: building is separate from running)."""
    padding = _padding(args.face_mask_padding)
    return RunOptions(
        model_dir=args.model_dir or default_model_dir(os.environ),
        frame_processors=tuple(FrameProcessor(name) for name in args.frame_processors),
        execution_providers=tuple(args.execution_providers),
        face_detector_model=args.face_detector_model,
        face_detector_score=args.face_detector_score,
        face_detector_interval=args.face_detector_interval,
        face_recognizer_model=args.face_recognizer_model,
        face_swapper_model=args.face_swapper_model,
        face_enhancer_model=args.face_enhancer_model,
        frame_enhancer_model=args.frame_enhancer_model,
        frame_enhancer_scale=args.frame_enhancer_scale,
        face_selector_mode=FaceSelectorMode(args.face_selector_mode),
        face_selector_order=FaceSelectorOrder(args.face_selector_order),
        reference_face_position=args.reference_face_position,
        reference_face_distance=args.reference_face_distance,
        reference_face_path=args.reference_face_path,
        face_mask_types=tuple(args.face_mask_types),
        face_mask_blur=args.face_mask_blur,
        face_mask_padding=padding,
        trim_frame_start=args.trim_frame_start,
        trim_frame_end=args.trim_frame_end,
        keep_fps=args.keep_fps,
        output_video_encoder=args.output_video_encoder,
        output_video_quality=args.output_video_quality,
        output_video_preset=args.output_video_preset,
        output_image_quality=args.output_image_quality,
        allow_non_commercial_models=args.allow_non_commercial_models,
        limits=Limits(max_image_pixels=args.max_pixels),
    )


def format_summary(output: Path, summary: RunSummary) -> str:
    return (
        f"{output}: {summary.kind}, {summary.frames} frame(s), "
        f"{summary.faces_found} face(s) found, {summary.faces_swapped} processed, "
        f"{summary.seconds:.2f}s ({summary.fps:.2f} fps), "
        f"providers {', '.join(summary.providers)}, models {', '.join(summary.models)}"
    )


class _ProgressBar:
    def __init__(self) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=1000, unit="‰", file=sys.stderr, leave=False)
        self._stage = ""

    def update(self, fraction: float, stage: str) -> None:
        if stage != self._stage:
            self._stage = stage
            self._bar.set_description(stage)
        self._bar.n = round(fraction * 1000)
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


def _progress_bar() -> _ProgressBar:
    return _ProgressBar()


def _padding(values: list[int]) -> tuple[int, int, int, int]:
    if len(values) == 1:
        return (values[0], values[0], values[0], values[0])
    if len(values) == 2:
        return (values[0], values[1], values[0], values[1])
    if len(values) == 4:
        return (values[0], values[1], values[2], values[3])
    raise argparse.ArgumentTypeError("--face-mask-padding takes 1, 2 or 4 values")


def _number(text: str, low: float, high: float, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{what} must be between {low:g} and {high:g}")
    return value


def _fraction(text: str) -> float:
    return _number(text, 0.0, 1.0, "value")


def _distance(text: str) -> float:
    return _number(text, 0.0, 2.0, "distance")


def _percent(text: str) -> int:
    return int(_number(text, 0, 100, "quality"))


def _non_negative(text: str) -> int:
    return int(_number(text, 0, 2**31, "value"))


def _positive(text: str) -> int:
    return int(_number(text, 1, 2**40, "value"))
