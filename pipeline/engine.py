"""The frame engine: models built once per run, then one call per frame.

``build_engine`` turns ``RunOptions`` into loaded, hash-verified models on the chosen
execution providers; ``Engine.process_frame`` detects, selects, swaps, enhances and
blends one frame, touching only the faces' regions of interest.
"""

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import onnxruntime as ort

from pipeline.detect import DETECTOR_CLASSES, DetectorConfig, FaceDetector
from pipeline.embed import EMBEDDER_CLASSES, ArcFaceEmbedder, FaceEmbedder
from pipeline.errors import ModelNotFoundError, NoFaceError
from pipeline.faces import Face
from pipeline.landmarks import LandmarkPredictor
from pipeline.mask import BoxMaskOptions
from pipeline.models import ModelRegistry, ModelTask
from pipeline.models.runtime import ProviderChoice, create_session, resolve_providers
from pipeline.options import FaceSelectorMode, FrameProcessor, RunOptions
from pipeline.paste import blend_patch
from pipeline.select import select_faces
from pipeline.swap import FacePatch, FaceSwapper, SourceIdentity
from pipeline.swap.inswapper import InSwapper, load_emap
from pipeline.swap.landmark import LandmarkSwapper
from pipeline.track import FaceTracker
from pipeline.types import Embedding, VisionFrame

DEFAULT_RECOGNIZER = "sface"
DEFAULT_LANDMARKER = "dlib68"
MAX_RENDER_THREADS = 4


def render_threads_for(cpus: int, *, enhancing: bool) -> int:
    """How many video frames ``Engine.render_frame`` works on at once: one per core (at most
    ``MAX_RENDER_THREADS``), or one when an enhancer runs (the frame enhancer's ncnn net is
    not safe to share between threads).

    A swap model on one core per frame beats one frame on all cores: a 128×128 network
    splits poorly across threads, and each split waits for the slowest part
    (docs/performance.md: +14% fps at 720p on 2 cores).
    """
    return 1 if enhancing else max(1, min(MAX_RENDER_THREADS, cpus))


def usable_cpus() -> int:
    """The cores this process may run on (its affinity, e.g. a container's cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class FrameStage(Protocol):
    """A whole-frame stage after swapping (the frame enhancer)."""

    def enhance(self, frame: VisionFrame) -> VisionFrame: ...


class FaceStage(Protocol):
    """A per-face stage after swapping (the face enhancer); works in place over face ROIs."""

    def enhance(self, frame: VisionFrame, faces: Sequence[Face]) -> VisionFrame: ...


@dataclass
class FrameResult:
    """One processed frame and what happened to it."""

    frame: VisionFrame
    faces_found: int
    faces_processed: int = 0
    patches: list[FacePatch] = field(default_factory=list)
    """The swap patches blended into the frame (their alphas are the face masks)."""

    @property
    def faces_swapped(self) -> int:
        return self.faces_processed


@dataclass(frozen=True)
class FrameFaces:
    """The faces of one frame: how many were found, and those selected for processing."""

    found: int
    selected: list[Face]


@dataclass
class Engine:
    """Loaded models and the per-frame work."""

    options: RunOptions
    providers: ProviderChoice
    detector: FaceDetector
    landmarker: LandmarkPredictor | None
    recognizer: FaceEmbedder
    swapper: FaceSwapper | None
    face_enhancer: FaceStage | None
    frame_enhancer: FrameStage | None
    model_names: tuple[str, ...]
    needs_landmarks: bool = True
    """Whether a stage uses the 68 points (landmark swapper, region mask); when not, the
    tracker follows them by optical flow alone instead of re-fitting them."""
    render_threads: int = 1
    """How many frames ``render_frame`` may work on at once (see ``render_threads_for``)."""
    reference: Embedding | None = None
    tracker: FaceTracker | None = None

    @contextmanager
    def sequence(self) -> Iterator[None]:
        """Within this block, frames are consecutive frames of one video: reuse detections.

        Takes effect when ``face_detector_interval`` > 1 and 68 landmarks are available;
        on leaving, every frame is analysed on its own again (source images included).
        """
        interval = self.options.face_detector_interval
        if interval > 1 and self.landmarker is not None:
            self.tracker = FaceTracker(
                self.detector.detect, self.landmarker, interval, refit=self.needs_landmarks
            )
        try:
            yield
        finally:
            self.tracker = None

    def analyse(self, frame: VisionFrame, *, with_embedding: bool = False) -> list[Face]:
        """Detected (or tracked) faces with the landmarks and embeddings later stages need."""
        if self.tracker is not None:
            faces = self.tracker.faces(frame)
        else:
            faces = self.detector.detect(frame)
            if self.landmarker is not None:
                faces = self.landmarker.annotate(frame, faces)
        if with_embedding:
            faces = [face.with_embedding(self.recognizer.embed(frame, face)) for face in faces]
        return faces

    def prepare_source(self, images: Sequence[tuple[Path, VisionFrame]]) -> SourceIdentity:
        """The largest face of each source image (every image must show one)."""
        samples: list[tuple[VisionFrame, Face]] = []
        for path, image in images:
            faces = self.analyse(image, with_embedding=True)
            if not faces:
                raise NoFaceError(f"no face found in the source image {path.name}")
            samples.append((image, max(faces, key=lambda face: face.area)))
        return SourceIdentity(samples=tuple(samples))

    def set_reference(self, frame: VisionFrame, label: str) -> None:
        """Use the face at ``reference_face_position`` in ``frame`` as the reference."""
        faces = select_faces(
            self.analyse(frame, with_embedding=True),
            FaceSelectorMode.MANY,
            self.options.face_selector_order,
        )
        position = self.options.reference_face_position
        if position >= len(faces):
            raise NoFaceError(
                f"no face at reference position {position} in {label} ({len(faces)} found)"
            )
        self.reference = faces[position].embedding

    def process_frame(self, frame: VisionFrame, source: SourceIdentity | None) -> FrameResult:
        """Swap/enhance the selected faces of ``frame`` in place, then the whole frame."""
        return self.render_frame(frame, self.select_faces(frame), source)

    def select_faces(self, frame: VisionFrame) -> FrameFaces:
        """The first half of ``process_frame``: find (or track) the faces, pick those to
        process. Reads ``frame`` only; call it for consecutive frames in order."""
        options = self.options
        reference_mode = options.face_selector_mode is FaceSelectorMode.REFERENCE
        faces = self.analyse(frame, with_embedding=reference_mode)
        selected = select_faces(
            faces,
            options.face_selector_mode,
            options.face_selector_order,
            self.reference,
            options.reference_face_distance,
        )
        return FrameFaces(found=len(faces), selected=selected)

    def render_frame(
        self, frame: VisionFrame, faces: FrameFaces, source: SourceIdentity | None
    ) -> FrameResult:
        """The second half: swap and enhance ``faces.selected`` in place, then the frame.
        Keeps no state between frames, so it may run beside ``select_faces`` on the next one,
        and on ``render_threads`` frames at once."""
        selected = faces.selected
        result = FrameResult(frame=frame, faces_found=faces.found, faces_processed=len(selected))
        if self.swapper is not None and source is not None:
            for face in selected:
                patch = self.swapper.swap(frame, face, source)
                blend_patch(frame, patch)
                result.patches.append(patch)
        if self.face_enhancer is not None:
            self.face_enhancer.enhance(frame, selected)
        if self.frame_enhancer is not None:
            result.frame = self.frame_enhancer.enhance(frame)
        return result


@dataclass
class _ModelLoader:
    """Verified paths and sessions from the registry, remembering what was loaded."""

    registry: ModelRegistry
    providers: ProviderChoice
    loaded: list[str] = field(default_factory=list)

    def path(self, name: str) -> Path:
        self.loaded.append(name)
        return self.registry.path(name)

    def session(self, name: str) -> ort.InferenceSession:
        return create_session(self.path(name), self.providers)

    def first_of_kind(self, kind: str) -> str:
        for spec in self.registry.specs():
            if spec.kind == kind:
                return spec.name
        raise ModelNotFoundError(
            f"no {kind} model is provisioned: add one with `enclave models add FILE --kind {kind}`"
        )


def build_engine(options: RunOptions) -> Engine:
    """Load every model ``options`` needs, hash-verified, on the chosen providers."""
    registry = ModelRegistry(
        options.model_dir, allow_non_commercial=options.allow_non_commercial_models
    )
    loader = _ModelLoader(registry, resolve_providers(options.execution_providers))

    detector_spec = registry.get(options.face_detector_model)
    detector = DETECTOR_CLASSES[detector_spec.kind](
        loader.session(detector_spec.name),
        DetectorConfig(score_threshold=options.face_detector_score),
    )
    recognizer_spec = registry.get(options.face_recognizer_model or DEFAULT_RECOGNIZER)
    recognizer = EMBEDDER_CLASSES[recognizer_spec.kind](loader.session(recognizer_spec.name))

    processors = set(options.frame_processors)
    swapping = FrameProcessor.FACE_SWAPPER in processors
    landmark_swap = options.face_swapper_model == LandmarkSwapper.name
    wants_region = "region" in options.face_mask_types
    landmarker = (
        LandmarkPredictor(loader.path(DEFAULT_LANDMARKER))
        if swapping and (landmark_swap or wants_region or options.face_detector_interval > 1)
        else None
    )
    render_threads = render_threads_for(
        usable_cpus(),
        enhancing=bool(processors & {FrameProcessor.FACE_ENHANCER, FrameProcessor.FRAME_ENHANCER}),
    )
    swapper: FaceSwapper | None = None
    if swapping:
        swapper = (
            LandmarkSwapper()
            if landmark_swap
            else _build_inswapper(options, loader, threads=1 if render_threads > 1 else None)
        )

    face_enhancer: FaceStage | None = None
    if FrameProcessor.FACE_ENHANCER in processors:
        from pipeline.enhance import FaceEnhancer

        name = options.face_enhancer_model or loader.first_of_kind("gfpgan")
        loader.loaded.append(name)
        face_enhancer = FaceEnhancer.from_registry(registry, name, loader.providers)
    frame_enhancer: FrameStage | None = None
    if FrameProcessor.FRAME_ENHANCER in processors:
        from pipeline.enhance import FrameEnhancer

        loader.loaded.append(options.frame_enhancer_model)
        frame_enhancer = FrameEnhancer.from_registry(
            registry, options.frame_enhancer_model, output_scale=options.frame_enhancer_scale
        )

    return Engine(
        options=options,
        providers=loader.providers,
        detector=detector,
        landmarker=landmarker,
        recognizer=recognizer,
        swapper=swapper,
        face_enhancer=face_enhancer,
        frame_enhancer=frame_enhancer,
        model_names=tuple(dict.fromkeys(loader.loaded)),
        needs_landmarks=swapping and (landmark_swap or wants_region),
        render_threads=render_threads,
    )


def _build_inswapper(
    options: RunOptions, loader: _ModelLoader, *, threads: int | None
) -> InSwapper:
    """``threads``: onnxruntime intra-op threads of the swap model (``None``: one per core)."""
    spec = loader.registry.get(options.face_swapper_model)
    if spec.task is not ModelTask.SWAP or spec.kind != "inswapper":
        raise ModelNotFoundError(f"{spec.name} is a {spec.kind} model, not a face swapper")
    recognizer = options.face_recognizer_model
    arcface_name = (
        recognizer
        if recognizer and loader.registry.get(recognizer).kind == "arcface"
        else loader.first_of_kind("arcface")
    )
    model_path = loader.path(spec.name)
    return InSwapper(
        create_session(model_path, loader.providers, threads=threads),
        load_emap(model_path),
        ArcFaceEmbedder(loader.session(arcface_name)),
        BoxMaskOptions(blur=options.face_mask_blur, padding=options.face_mask_padding),
        use_region_mask="region" in options.face_mask_types,
    )
