"""What every bench works on: a model directory and clips made from the test photos.

The model directory holds the bundled models plus the generated ONNX files with the
inswapper_128 and ArcFace contracts (``cost="realistic"``: a swap call costs about what
the real model costs on CPU). Clips drift slowly over a photo, as a hand-held camera
would, so every frame differs and the faces stay whole. Nothing is downloaded.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from pipeline.models import ModelRegistry, ModelTask
from pipeline.types import VisionFrame
from tests.pipeline.contract_models import make_arcface, make_inswapper
from tests.pipeline.media_fixtures import make_clip
from tests.pipeline.photos import astronaut, read, t1_path

NON_COMMERCIAL = "non-commercial (insightface)"
SWAPPER = "inswapper_128"
ARCFACE = "arcface_w600k_r50"
RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}


@dataclass(frozen=True)
class Scene:
    """A photo region to film: ``faces`` faces inside ``region`` (x1, y1, x2, y2)."""

    name: str
    faces: int
    region: tuple[int, int, int, int]

    def photo(self) -> VisionFrame:
        return astronaut() if self.faces == 1 else read(t1_path())


ONE_FACE = Scene("astronaut", 1, (0, 0, 512, 288))
"""scikit-image's astronaut: her face sits in the top half of the photo."""
THREE_FACES = Scene("t1 left", 3, (0, 60, 680, 442))
"""insightface's t1.jpg, the three people on the left."""


def prepare_models(directory: Path) -> Path:
    """Bundled models plus the inswapper and ArcFace contract files, once per directory."""
    registry = ModelRegistry(directory)
    registry.prepare()
    names = {spec.name for spec in registry.specs()}
    work = directory / "contract-sources"
    if SWAPPER not in names:
        source = make_inswapper(work / f"{SWAPPER}.onnx", cost="realistic")
        registry.add(source, task=ModelTask.SWAP, kind="inswapper", licence=NON_COMMERCIAL)
    if ARCFACE not in names:
        source = make_arcface(work / "w600k_r50.onnx")
        registry.add(source, task=ModelTask.EMBED, kind="arcface", licence=NON_COMMERCIAL)
    return directory


def drifting_frames(
    scene: Scene, count: int, size: tuple[int, int], drift: int = 12
) -> Iterator[VisionFrame]:
    """``count`` frames of ``size`` (w, h): ``scene.region`` shifted a little each frame."""
    photo = scene.photo()
    x1, y1, x2, y2 = scene.region
    height, width = photo.shape[:2]
    for index in range(count):
        phase = 2 * np.pi * index / max(count, 1)
        dx, dy = round(drift * np.sin(phase)), round(drift * np.cos(phase) / 2)
        left, top = int(np.clip(x1 + dx, 0, width)), int(np.clip(y1 + dy, 0, height))
        right, bottom = min(width, left + x2 - x1), min(height, top + y2 - y1)
        crop = photo[top:bottom, left:right]
        yield np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC), np.uint8)


def write_clip(path: Path, scene: Scene, resolution: str, frames: int) -> Path:
    """An H.264 clip (no audio: the reference loop drops audio) of ``scene``."""
    if path.is_file():
        return path
    size = RESOLUTIONS[resolution]
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_clip(
        path, drifting_frames(scene, frames, size), fps=Fraction(25), with_audio=False, size=size
    )
