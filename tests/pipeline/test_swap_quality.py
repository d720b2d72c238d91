"""The acceptance bar for a swap: astronaut → t1.jpg, every face, measured not eyeballed."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pipeline.embed import cosine_similarity
from pipeline.engine import Engine, FrameResult, build_engine
from pipeline.faces import Face
from pipeline.options import FaceSelectorMode, RunOptions
from pipeline.types import VisionFrame
from tests.pipeline.photos import astronaut, read, t1_path


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union)


@dataclass
class SwapOutcome:
    engine: Engine
    source_face: Face
    original: VisionFrame
    original_faces: list[Face]
    result: FrameResult


@pytest.fixture(scope="module")
def swapped_t1(model_dir: Path) -> SwapOutcome:
    engine = build_engine(RunOptions(model_dir=model_dir, face_selector_mode=FaceSelectorMode.MANY))
    source = engine.prepare_source([(Path("astronaut.png"), astronaut())])
    original = read(t1_path())
    original_faces = engine.analyse(original, with_embedding=True)
    result = engine.process_frame(original.copy(), source)
    return SwapOutcome(engine, source.face, original, original_faces, result)


def test_every_detected_face_is_swapped(swapped_t1: SwapOutcome) -> None:
    assert swapped_t1.result.faces_found == 6
    assert swapped_t1.result.faces_swapped == 6
    for patch in swapped_t1.result.patches:
        inside = patch.alpha > 0.5
        before = swapped_t1.original[patch.y1 : patch.y2, patch.x1 : patch.x2][inside]
        after = swapped_t1.result.frame[patch.y1 : patch.y2, patch.x1 : patch.x2][inside]
        assert inside.sum() > 500
        assert np.abs(before.astype(int) - after.astype(int)).mean() > 8


def test_pixels_outside_the_masks_are_unchanged(swapped_t1: SwapOutcome) -> None:
    touched = np.zeros(swapped_t1.original.shape[:2], dtype=bool)
    for patch in swapped_t1.result.patches:
        touched[patch.y1 : patch.y2, patch.x1 : patch.x2] |= patch.alpha > 0
    outside = ~touched
    assert outside.mean() > 0.8
    assert psnr(swapped_t1.original[outside], swapped_t1.result.frame[outside]) > 45


def test_each_swapped_face_looks_more_like_the_source_than_the_original(
    swapped_t1: SwapOutcome,
) -> None:
    engine, source_face = swapped_t1.engine, swapped_t1.source_face
    assert source_face.embedding is not None
    after_faces = engine.analyse(swapped_t1.result.frame, with_embedding=True)
    assert len(after_faces) == 6
    for before in swapped_t1.original_faces:
        after = max(after_faces, key=lambda face: iou(face.box, before.box))
        assert iou(after.box, before.box) > 0.5
        assert before.embedding is not None and after.embedding is not None
        to_source = cosine_similarity(after.embedding, source_face.embedding)
        to_original = cosine_similarity(after.embedding, before.embedding)
        assert to_source > to_original, (before.box, to_source, to_original)
