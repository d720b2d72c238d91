"""The ``Face`` value every stage passes along."""

from dataclasses import dataclass, replace

import numpy as np

from pipeline.types import BoundingBox, Embedding, FaceLandmark5, FaceLandmark68


@dataclass(frozen=True)
class Face:
    """One detected face; later stages fill in the optional fields with ``replace``."""

    box: BoundingBox
    kps5: FaceLandmark5
    score: float
    landmarks68: FaceLandmark68 | None = None
    embedding: Embedding | None = None

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def normed_embedding(self) -> Embedding:
        """The embedding scaled to unit length (raises if no embedding was computed)."""
        if self.embedding is None:
            raise ValueError("face has no embedding yet")
        norm = float(np.linalg.norm(self.embedding))
        return (self.embedding / max(norm, 1e-12)).astype(np.float32)

    def with_landmarks(self, landmarks68: FaceLandmark68) -> "Face":
        return replace(self, landmarks68=landmarks68)

    def with_embedding(self, embedding: Embedding) -> "Face":
        return replace(self, embedding=embedding)
