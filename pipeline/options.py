"""What a caller asks of the pipeline, and what it reports back."""

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
"""Image formats the pipeline reads and writes, by file suffix."""
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm")
"""Video containers the pipeline writes, by file suffix."""


class FaceSelectorMode(StrEnum):
    ONE = "one"
    MANY = "many"
    REFERENCE = "reference"


class FaceSelectorOrder(StrEnum):
    LEFT_RIGHT = "left-right"
    RIGHT_LEFT = "right-left"
    TOP_BOTTOM = "top-bottom"
    BOTTOM_TOP = "bottom-top"
    LARGE_SMALL = "large-small"
    SMALL_LARGE = "small-large"
    BEST_WORST = "best-worst"


class FrameProcessor(StrEnum):
    FACE_SWAPPER = "face_swapper"
    FACE_ENHANCER = "face_enhancer"
    FRAME_ENHANCER = "frame_enhancer"


@dataclass(frozen=True)
class Limits:
    """Hard bounds on input media: decompression bombs and runaway videos stop here."""

    max_image_pixels: int = 40_000_000
    max_video_pixels: int = 3840 * 2160
    max_video_seconds: float = 3600.0


@dataclass(frozen=True)
class RunOptions:
    """Every knob of one run; names follow FaceFusion's flags where they exist."""

    model_dir: Path
    frame_processors: tuple[FrameProcessor, ...] = (FrameProcessor.FACE_SWAPPER,)
    execution_providers: tuple[str, ...] = ("cpu",)
    face_detector_model: str = "retinaface"
    face_detector_score: float = 0.5
    face_detector_interval: int = 5
    """In videos, run the detector every this many frames and track faces in between."""
    face_recognizer_model: str | None = None
    face_swapper_model: str = "landmark"
    face_enhancer_model: str | None = None
    frame_enhancer_model: str = "realesrgan_x4plus"
    frame_enhancer_scale: int = 4
    face_selector_mode: FaceSelectorMode = FaceSelectorMode.MANY
    face_selector_order: FaceSelectorOrder = FaceSelectorOrder.LEFT_RIGHT
    reference_face_position: int = 0
    reference_face_distance: float = 0.6
    reference_face_path: Path | None = None
    face_mask_types: tuple[str, ...] = ("box", "region")
    face_mask_blur: float = 0.3
    face_mask_padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    trim_frame_start: int | None = None
    trim_frame_end: int | None = None
    keep_fps: bool = True
    output_video_encoder: str = "libx264"
    output_video_quality: int = 80
    output_video_preset: str = "veryfast"
    output_image_quality: int = 90
    allow_non_commercial_models: bool = False
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class RunSummary:
    """What one run did; printed by the CLI and stored on the job by the service."""

    kind: str  # "image" or "video"
    frames: int
    faces_found: int
    faces_swapped: int
    seconds: float
    providers: tuple[str, ...]
    models: tuple[str, ...]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0
