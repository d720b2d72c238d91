"""The one entry point callers use: ``process_file`` (CLI and service) and ``compare_images``.

Images are read, swapped and written atomically; videos stream through PyAV with decode,
inference and encode overlapping, never writing frames to disk.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.embed import cosine_similarity
from pipeline.engine import Engine, FrameFaces, build_engine
from pipeline.errors import NoFaceError, ProcessingCanceled, UnsupportedMediaError
from pipeline.media import MediaKind, read_image, sniff_media_kind, write_image
from pipeline.options import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    FaceSelectorMode,
    FrameProcessor,
    RunOptions,
    RunSummary,
)
from pipeline.swap import SourceIdentity
from pipeline.types import VisionFrame
from pipeline.video import TwoStageProcessor, VideoEncoding, transcode_video

ProgressCallback = Callable[[float, str], None]
CancelCheck = Callable[[], bool]

SAME_PERSON_THRESHOLD = 0.363
"""SFace cosine similarity above which two faces are the same person (OpenCV's value)."""


@dataclass(frozen=True)
class CompareResult:
    similarity: float
    same_person: bool
    threshold: float
    faces_a: int
    faces_b: int


def process_file(
    sources: Sequence[Path],
    target: Path,
    output: Path,
    options: RunOptions,
    *,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    engine: Engine | None = None,
) -> RunSummary:
    """Swap the source identity into ``target`` (an image or a video) and write ``output``."""
    started = time.perf_counter()
    kind = sniff_media_kind(target)
    _check_output_suffix(kind, output)
    report = on_progress or (lambda _fraction, _stage: None)
    report(0.0, "loading models")
    engine = engine or build_engine(options)
    if options.face_selector_mode is FaceSelectorMode.REFERENCE and options.reference_face_path:
        reference = read_image(options.reference_face_path, options.limits)
        engine.set_reference(reference, "the reference image")
    run = _Run(
        engine=engine,
        source=_prepare_source(engine, sources, options),
        target=target,
        output=output,
        started=started,
        report=report,
        should_cancel=should_cancel,
    )
    return run.image() if kind is MediaKind.IMAGE else run.video()


def compare_images(a: Path, b: Path, options: RunOptions) -> CompareResult:
    """Identity similarity of the largest face in each image; stores nothing."""
    engine = build_engine(
        RunOptions(
            model_dir=options.model_dir,
            frame_processors=(),
            execution_providers=options.execution_providers,
            face_detector_model=options.face_detector_model,
            face_detector_score=options.face_detector_score,
            face_recognizer_model=options.face_recognizer_model,
            face_mask_types=(),
            limits=options.limits,
        )
    )
    faces = []
    for path in (a, b):
        image = read_image(path, options.limits)
        found = engine.analyse(image, with_embedding=True)
        if not found:
            raise NoFaceError(f"no face found in {path.name}")
        faces.append((max(found, key=lambda face: face.area), len(found)))
    (face_a, count_a), (face_b, count_b) = faces
    assert face_a.embedding is not None and face_b.embedding is not None
    similarity = cosine_similarity(face_a.embedding, face_b.embedding)
    threshold = SAME_PERSON_THRESHOLD
    return CompareResult(similarity, similarity >= threshold, threshold, count_a, count_b)


def _prepare_source(
    engine: Engine, sources: Sequence[Path], options: RunOptions
) -> SourceIdentity | None:
    if FrameProcessor.FACE_SWAPPER not in options.frame_processors:
        return None
    if not sources:
        raise NoFaceError("face_swapper needs at least one --source image with a face")
    images = []
    for path in sources:
        if sniff_media_kind(path) is not MediaKind.IMAGE:
            raise UnsupportedMediaError(f"source {path.name} must be an image (jpg, png, webp)")
        images.append((path, read_image(path, options.limits)))
    return engine.prepare_source(images)


def _check_output_suffix(kind: MediaKind, output: Path) -> None:
    allowed = IMAGE_SUFFIXES if kind is MediaKind.IMAGE else VIDEO_SUFFIXES
    if output.suffix.lower() not in allowed:
        raise UnsupportedMediaError(
            f"output {output.name}: a {kind.value} target needs one of {', '.join(allowed)}"
        )


@dataclass
class _Run:
    """One ``process_file`` call once models and the source are ready."""

    engine: Engine
    source: SourceIdentity | None
    target: Path
    output: Path
    started: float
    report: ProgressCallback
    should_cancel: CancelCheck | None

    def image(self) -> RunSummary:
        options = self.engine.options
        frame = read_image(self.target, options.limits)
        self.report(0.1, "processing")
        result = self.engine.process_frame(frame, self.source)
        if result.faces_found == 0:
            raise NoFaceError(f"no face found in the target {self.target.name}")
        self.report(0.9, "writing")
        write_image(self.output, result.frame, options.output_image_quality)
        self.report(1.0, "done")
        return self._summary("image", 1, result.faces_found, result.faces_swapped)

    def video(self) -> RunSummary:
        engine, options = self.engine, self.engine.options
        if options.face_selector_mode is FaceSelectorMode.REFERENCE and engine.reference is None:
            engine.set_reference(_first_frame_with_face(engine, self.target), self.target.name)
        totals = {"found": 0, "swapped": 0}

        def analyse(frame: VisionFrame, _index: int) -> FrameFaces:
            faces = engine.select_faces(frame)
            # Counted here, on the one analysing thread: renders may run several at once.
            totals["found"] += faces.found
            totals["swapped"] += len(faces.selected)
            return faces

        # Finding faces in frame n+1 (detection, tracking) overlaps swapping frame n, and
        # engine.render_threads frames are swapped at once.
        process = TwoStageProcessor(
            analyse,
            lambda frame, faces: engine.render_frame(frame, faces, self.source).frame,
            render_threads=engine.render_threads,
        )

        def progress(done: int, total: int) -> None:
            self.report(done / max(total, 1), "processing")

        encoding = VideoEncoding(
            encoder=options.output_video_encoder,
            quality=options.output_video_quality,
            preset=options.output_video_preset,
            keep_fps=options.keep_fps,
            trim_frame_start=options.trim_frame_start,
            trim_frame_end=options.trim_frame_end,
        )
        with engine.sequence():
            outcome = transcode_video(
                self.target,
                self.output,
                process,
                encoding,
                options.limits,
                on_progress=progress,
                should_cancel=self.should_cancel,
            )
        if totals["found"] == 0:
            self.output.unlink(missing_ok=True)
            raise NoFaceError(
                f"no face found in any of the {outcome.frames_in} frames of {self.target.name}"
            )
        self.report(1.0, "done")
        return self._summary("video", outcome.frames_out, totals["found"], totals["swapped"])

    def _summary(self, kind: str, frames: int, found: int, swapped: int) -> RunSummary:
        return RunSummary(
            kind=kind,
            frames=frames,
            faces_found=found,
            faces_swapped=swapped,
            seconds=time.perf_counter() - self.started,
            providers=self.engine.providers.applied,
            models=self.engine.model_names,
        )


def _first_frame_with_face(engine: Engine, target: Path) -> VisionFrame:
    from pipeline.video import iter_frames

    for frame in iter_frames(target, engine.options.limits):
        if engine.analyse(frame):
            return frame
    raise NoFaceError(f"no face found in {target.name} to use as the reference")


__all__ = ["CompareResult", "ProcessingCanceled", "compare_images", "process_file"]
