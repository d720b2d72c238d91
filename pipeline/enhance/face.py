"""Face enhancement: a provisioned GFPGAN-style ONNX model restores each face in place.

Contract (GFPGAN 1.4 as FaceFusion ships it): input ``input`` [1,3,512,512], RGB scaled
to [-1, 1], the face aligned to the FFHQ template; output ``output``, same shape and
range. The restored crop goes back through a feathered box mask over the face's region
of interest only; the rest of the frame is never touched or copied.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pipeline.align import FFHQ_512, warp_face
from pipeline.errors import ModelError
from pipeline.faces import Face
from pipeline.mask import BoxMaskOptions, box_mask
from pipeline.paste import blend_patch, patch_from_crop
from pipeline.types import VisionFrame

if TYPE_CHECKING:
    import onnxruntime as ort

    from pipeline.models import ModelRegistry, ProviderChoice

INPUT_NAME = "input"
DEFAULT_SIZE = 512


class FaceEnhancer:
    """Runs a GFPGAN-contract model on every given face of a frame."""

    def __init__(
        self,
        session: "ort.InferenceSession",
        *,
        blend: float = 0.8,
        mask_options: BoxMaskOptions | None = None,
    ) -> None:
        inputs = session.get_inputs()
        if [tensor.name for tensor in inputs] != [INPUT_NAME]:
            raise ModelError(
                f"face enhancer inputs are {[t.name for t in inputs]}, expected ['input'] "
                "(a GFPGAN-style model)"
            )
        if not 0.0 <= blend <= 1.0:
            raise ValueError("blend must be within [0, 1]")
        side = inputs[0].shape[-1]
        self.size = side if isinstance(side, int) else DEFAULT_SIZE
        self._session = session
        self._alpha = box_mask(self.size, mask_options or BoxMaskOptions()) * np.float32(blend)

    @classmethod
    def from_registry(
        cls,
        registry: "ModelRegistry",
        name: str,
        providers: "ProviderChoice",
        *,
        threads: int | None = None,
        blend: float = 0.8,
    ) -> "FaceEnhancer":
        """Load a verified ``gfpgan``-kind model (licence checks included) from the registry."""
        from pipeline.models import create_session

        spec = registry.get(name)
        if spec.kind != "gfpgan":
            raise ModelError(f"model {name!r} is a {spec.kind!r} model, not a face enhancer")
        return cls(create_session(registry.path(name), providers, threads=threads), blend=blend)

    def restore(self, crop: VisionFrame) -> VisionFrame:
        """One aligned BGR crop through the model."""
        rgb = crop[:, :, ::-1].astype(np.float32) / 255.0
        blob = ((rgb - 0.5) / 0.5).transpose(2, 0, 1)[np.newaxis]
        (output,) = self._session.run(None, {INPUT_NAME: blob})
        restored = (np.clip(output[0], -1.0, 1.0) + 1.0) / 2.0 * 255.0
        bgr = np.rint(restored.transpose(1, 2, 0)[:, :, ::-1])
        return np.ascontiguousarray(bgr, dtype=np.uint8)

    def enhance(self, frame: VisionFrame, faces: Sequence[Face]) -> VisionFrame:
        """Restore each face of ``frame`` in place; returns ``frame``."""
        for face in faces:
            crop, matrix = warp_face(frame, face.kps5, FFHQ_512, self.size)
            patch = patch_from_crop(frame.shape, self.restore(crop), matrix, self._alpha)
            blend_patch(frame, patch)
        return frame
