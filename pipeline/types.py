"""Array aliases named by meaning (as facefusion's ``types.py``)."""

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

VisionFrame: TypeAlias = npt.NDArray[np.uint8]
"""An H×W×3 BGR uint8 image, OpenCV's layout."""

Mask: TypeAlias = npt.NDArray[np.float32]
"""An H×W float mask in [0, 1]."""

FaceLandmark5: TypeAlias = npt.NDArray[np.float32]
"""5×2 points: left eye, right eye, nose tip, left mouth corner, right mouth corner."""

FaceLandmark68: TypeAlias = npt.NDArray[np.float32]
"""68×2 points in the iBUG 300-W layout (dlib's shape predictor)."""

Embedding: TypeAlias = npt.NDArray[np.float32]
"""An identity vector (not necessarily normalised)."""

Matrix: TypeAlias = npt.NDArray[np.float64]
"""A 2×3 affine transform."""

BoundingBox: TypeAlias = npt.NDArray[np.float32]
"""x1, y1, x2, y2 in pixels."""
