"""Identity embeddings: SFace (bundled, 128-d) and ArcFace (provisioned, 512-d)."""

from typing import Protocol

import numpy as np
import onnxruntime as ort

from pipeline.align import ARCFACE_112, warp_face
from pipeline.faces import Face
from pipeline.types import Embedding, VisionFrame


class FaceEmbedder(Protocol):
    dimension: int

    def embed(self, frame: VisionFrame, face: Face) -> Embedding:
        """The identity vector of ``face`` (not normalised)."""


class _AlignedEmbedder:
    """Aligns a face to the 112-px ArcFace template and runs a recogniser on the crop."""

    _SIZE = 112

    def __init__(self, session: ort.InferenceSession) -> None:
        self._session = session
        self._input_name = session.get_inputs()[0].name
        self.dimension = int(session.get_outputs()[0].shape[-1])

    def _blob(self, rgb_crop: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def embed(self, frame: VisionFrame, face: Face) -> Embedding:
        crop, _ = warp_face(frame, face.kps5, ARCFACE_112, self._SIZE)
        blob = self._blob(crop[:, :, ::-1].astype(np.float32))
        (output,) = self._session.run(None, {self._input_name: blob})
        return np.asarray(output[0], dtype=np.float32)

    def annotate(self, frame: VisionFrame, faces: list[Face]) -> list[Face]:
        return [face.with_embedding(self.embed(frame, face)) for face in faces]


class SFaceEmbedder(_AlignedEmbedder):
    """SFace 2021dec: RGB 0–255, no normalisation (OpenCV's FaceRecognizerSF contract)."""

    def _blob(self, rgb_crop: np.ndarray) -> np.ndarray:
        return rgb_crop.transpose(2, 0, 1)[np.newaxis]


class ArcFaceEmbedder(_AlignedEmbedder):
    """insightface ArcFace (w600k_r50 contract): RGB, (x − 127.5) / 127.5."""

    def _blob(self, rgb_crop: np.ndarray) -> np.ndarray:
        return ((rgb_crop - 127.5) / 127.5).transpose(2, 0, 1)[np.newaxis]


def cosine_similarity(a: Embedding, b: Embedding) -> float:
    """Cosine of the angle between two identity vectors, in [-1, 1]."""
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denominator) if denominator > 0 else 0.0


EMBEDDER_CLASSES: dict[str, type[SFaceEmbedder | ArcFaceEmbedder]] = {
    "sface": SFaceEmbedder,
    "arcface": ArcFaceEmbedder,
}
"""Embedder class by ``ModelSpec.kind``."""
