"""Face swappers: each turns (frame, target face, source) into a ``FacePatch`` to blend."""

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pipeline.faces import Face
from pipeline.types import Mask, VisionFrame


@dataclass(frozen=True)
class FacePatch:
    """New pixels for one face's region of interest and how strongly to blend them."""

    x1: int
    y1: int
    pixels: VisionFrame
    """ROI-sized BGR pixels."""
    alpha: Mask
    """ROI-sized blend weights in [0, 1]; 0 leaves the frame's pixel untouched."""

    @property
    def x2(self) -> int:
        return self.x1 + int(self.pixels.shape[1])

    @property
    def y2(self) -> int:
        return self.y1 + int(self.pixels.shape[0])

    def is_empty(self) -> bool:
        return self.pixels.size == 0 or not bool(np.any(self.alpha > 0))


@dataclass(frozen=True)
class SourceIdentity:
    """The face (or faces, one per source image) to put into the target, prepared once."""

    samples: tuple[tuple[VisionFrame, Face], ...]
    """(image, face) pairs; the first drives the landmark swapper's pixels, all of them
    the mean identity of embedding-based swappers."""

    @property
    def frame(self) -> VisionFrame:
        return self.samples[0][0]

    @property
    def face(self) -> Face:
        return self.samples[0][1]


class FaceSwapper(Protocol):
    name: str

    def swap(self, frame: VisionFrame, target: Face, source: SourceIdentity) -> FacePatch:
        """The patch that replaces ``target`` with the source identity."""
