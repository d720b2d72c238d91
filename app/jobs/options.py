"""What a caller may set on a job: the pipeline's ``RunOptions`` minus what the operator
decides (model directory, execution providers, licences, limits).

Names are the CLI's and ``RunOptions``'s, so a job request reads like an ``enclave run``
command line. Stored on the job as JSON and turned into ``RunOptions`` by the worker.
"""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.options import (
    FaceSelectorMode,
    FaceSelectorOrder,
    FrameProcessor,
    Limits,
    RunOptions,
)

Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Padding = Annotated[int, Field(ge=0, le=100)]
# Which models exist is the model manifest's decision; the name only has to be a plain one.
ModelName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
MAX_FRAMES = 10_000_000
"""More frames than any video within the duration limit has (an hour at 240 fps is 864k)."""


class JobOptions(BaseModel):
    """Processing options of one job (every field optional, defaults as in the CLI)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frame_processors: tuple[FrameProcessor, ...] = Field(
        default=(FrameProcessor.FACE_SWAPPER,), min_length=1, max_length=3
    )
    face_detector_model: ModelName = "retinaface"
    face_detector_score: Unit = 0.5
    face_detector_interval: Annotated[int, Field(ge=1, le=30)] = 5
    face_recognizer_model: ModelName | None = None
    face_swapper_model: ModelName = "landmark"
    face_enhancer_model: ModelName | None = None
    frame_enhancer_model: ModelName = "realesrgan_x4plus"
    frame_enhancer_scale: Literal[1, 2, 3, 4] = 4
    face_selector_mode: FaceSelectorMode = FaceSelectorMode.MANY
    face_selector_order: FaceSelectorOrder = FaceSelectorOrder.LEFT_RIGHT
    reference_face_position: Annotated[int, Field(ge=0, le=1000)] = 0
    reference_face_distance: Annotated[float, Field(ge=0.0, le=2.0)] = 0.6
    face_mask_types: tuple[Literal["box", "region"], ...] = ("box", "region")
    face_mask_blur: Unit = 0.3
    face_mask_padding: tuple[Padding, Padding, Padding, Padding] = (0, 0, 0, 0)
    trim_frame_start: Annotated[int, Field(ge=0, le=MAX_FRAMES)] | None = None
    trim_frame_end: Annotated[int, Field(ge=1, le=MAX_FRAMES)] | None = None
    keep_fps: bool = True
    output_video_encoder: Literal["libx264", "libx265", "libvpx-vp9", "mpeg4"] = "libx264"
    output_video_quality: Annotated[int, Field(ge=0, le=100)] = 80
    output_video_preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"
    ] = "veryfast"
    output_image_quality: Annotated[int, Field(ge=0, le=100)] = 90

    @model_validator(mode="after")
    def _trim_in_order(self) -> "JobOptions":
        start, end = self.trim_frame_start, self.trim_frame_end
        if start is not None and end is not None and end <= start:
            raise ValueError("trim_frame_end must be greater than trim_frame_start")
        return self

    def to_run_options(
        self,
        *,
        model_dir: Path,
        execution_providers: tuple[str, ...],
        allow_non_commercial_models: bool,
        limits: Limits,
    ) -> RunOptions:
        return RunOptions(
            model_dir=model_dir,
            execution_providers=execution_providers,
            allow_non_commercial_models=allow_non_commercial_models,
            limits=limits,
            **self.model_dump(),
        )
