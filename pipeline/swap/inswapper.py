"""The ``inswapper_128`` contract (provisioned; insightface, non-commercial licence).

Inputs: ``target`` — the face aligned to the ArcFace template in a 128×128 crop, RGB,
scaled to [0, 1]; ``source`` — the source identity as a 512-d latent: the normalised
ArcFace embedding projected by ``emap`` (the graph's last initializer) and normalised
again. Output: the swapped 128×128 crop, RGB in [0, 1], pasted back over the face's ROI.
"""

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from pipeline.align import ARCFACE_112, estimate_norm, template_for, warp_face
from pipeline.embed import ArcFaceEmbedder
from pipeline.errors import ModelError
from pipeline.faces import Face
from pipeline.mask import BoxMaskOptions, box_mask, region_mask
from pipeline.paste import patch_from_crop
from pipeline.swap import FacePatch, SourceIdentity
from pipeline.types import Mask, VisionFrame

CROP_SIZE = 128


def load_emap(model_path: Path) -> npt.NDArray[np.float32]:
    """The 512×512 latent projection stored as the model's last initializer."""
    model = onnx.load(str(model_path), load_external_data=False)
    if not model.graph.initializer:
        raise ModelError(f"{model_path.name} has no initializers; it is not an inswapper model")
    emap = numpy_helper.to_array(model.graph.initializer[-1]).astype(np.float32)
    if emap.ndim != 2 or emap.shape[0] != emap.shape[1]:
        raise ModelError(
            f"{model_path.name}: last initializer has shape {emap.shape}, expected a square emap"
        )
    return emap


class InSwapper:
    """Runs an inswapper_128-contract model; needs an ArcFace embedder for the source."""

    name = "inswapper_128"

    def __init__(
        self,
        session: ort.InferenceSession,
        emap: npt.NDArray[np.float32],
        embedder: ArcFaceEmbedder,
        mask_options: BoxMaskOptions | None = None,
        use_region_mask: bool = True,
    ) -> None:
        inputs = {tensor.name for tensor in session.get_inputs()}
        if inputs != {"target", "source"}:
            raise ModelError(
                f"inswapper model inputs are {sorted(inputs)}, expected ['source', 'target']"
            )
        if embedder.dimension != emap.shape[0]:
            raise ModelError(
                f"the recogniser gives {embedder.dimension}-d embeddings but emap expects "
                f"{emap.shape[0]}-d: provision ArcFace (w600k_r50) for inswapper"
            )
        self._session = session
        self._emap = emap
        self._embedder = embedder
        self._box_mask = box_mask(CROP_SIZE, mask_options or BoxMaskOptions())
        self._use_region_mask = use_region_mask
        self._latent_cache: tuple[int, npt.NDArray[np.float32]] | None = None

    def source_latent(self, source: SourceIdentity) -> npt.NDArray[np.float32]:
        """Mean normalised ArcFace identity of the source faces, projected by ``emap``."""
        key = id(source)
        if self._latent_cache is not None and self._latent_cache[0] == key:
            return self._latent_cache[1]
        embeddings = [self._embedder.embed(image, face) for image, face in source.samples]
        normed = [vector / max(float(np.linalg.norm(vector)), 1e-12) for vector in embeddings]
        mean = np.mean(normed, axis=0)
        latent = (mean / max(float(np.linalg.norm(mean)), 1e-12)).reshape(1, -1) @ self._emap
        latent = (latent / max(float(np.linalg.norm(latent)), 1e-12)).astype(np.float32)
        self._latent_cache = (key, latent)
        return np.asarray(latent, dtype=np.float32)

    def swap(self, frame: VisionFrame, target: Face, source: SourceIdentity) -> FacePatch:
        crop, matrix = warp_face(frame, target.kps5, ARCFACE_112, CROP_SIZE)
        blob = (crop[:, :, ::-1].astype(np.float32) / 255.0).transpose(2, 0, 1)[np.newaxis]
        (output,) = self._session.run(None, {"target": blob, "source": self.source_latent(source)})
        swapped = np.clip(output[0].transpose(1, 2, 0) * 255.0, 0, 255)
        swapped_bgr = np.ascontiguousarray(np.rint(swapped[:, :, ::-1])).astype(np.uint8)
        return patch_from_crop(frame.shape, swapped_bgr, matrix, self._mask(target, matrix))

    def _mask(self, target: Face, matrix: npt.NDArray[np.float64]) -> Mask:
        if not self._use_region_mask or target.landmarks68 is None:
            return self._box_mask
        points = target.landmarks68 @ matrix[:, :2].T.astype(np.float32) + matrix[:, 2]
        region = region_mask((CROP_SIZE, CROP_SIZE), points.astype(np.float32), 3, 2.0)
        return np.minimum(self._box_mask, region).astype(np.float32)


__all__ = ["CROP_SIZE", "InSwapper", "estimate_norm", "load_emap", "template_for"]
