"""The weight-free landmark swapper: the default, a real swap with no learned weights.

It carries the source's inner-face geometry (brows, eyes, nose, mouth) and texture onto
the target while keeping the target's pose, outline (half-way) and lighting:

1. Fit an affine map from the source's anchor points (eye centres, nose tip, mouth
   corners) to the target's, so pose and scale follow the target.
2. Destination landmarks: the mapped source for the inner face, half-way between source
   and target for the jaw line and a forehead band, so the face's proportions are the
   source's (warping exactly onto the target's landmarks keeps the target's identity).
3. Warp the source onto them triangle by triangle (a Delaunay mesh of the source).
4. Match low-frequency colour and light to the target (a normalised blur of the
   difference, which keeps the source's detail but the target's skin tone and shading).
5. Feather the result inside the landmark hull; outside it nothing changes.
"""

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from pipeline.errors import NoFaceError
from pipeline.faces import Face
from pipeline.landmarks import JAW, LEFT_EYE, RIGHT_EYE
from pipeline.mask import region_mask
from pipeline.swap import FacePatch, SourceIdentity
from pipeline.types import FaceLandmark68, VisionFrame

Points = npt.NDArray[np.float32]
Triangles = npt.NDArray[np.int32]

_INNER = slice(17, 68)
_NOSE_TIP = 30
_MOUTH_LEFT, _MOUTH_RIGHT = 48, 54
_CHIN = 8
_BROWS = slice(17, 27)


@dataclass(frozen=True)
class LandmarkSwapOptions:
    jaw_blend: float = 0.5
    """How far the jaw line and forehead move toward the source's (0 keeps the target's)."""
    forehead: float = 0.15
    """Height of the forehead band above the brows, as a fraction of eyes-to-chin; higher
    carries more of the source (and of its hairline)."""
    erode: float = 0.04
    """Mask erosion as a fraction of the face size, so the seam sits inside the face."""
    feather: float = 0.02
    """Width (Gaussian sigma) of the seam's feather as a fraction of the face size."""
    color_sigma: float = 0.2
    """Blur of the colour correction as a fraction of the face size."""


def _anchors(landmarks: FaceLandmark68) -> Points:
    return np.array(
        [
            landmarks[RIGHT_EYE].mean(axis=0),
            landmarks[LEFT_EYE].mean(axis=0),
            landmarks[_NOSE_TIP],
            landmarks[_MOUTH_LEFT],
            landmarks[_MOUTH_RIGHT],
        ],
        dtype=np.float32,
    )


def _with_forehead(landmarks: FaceLandmark68, height: float) -> Points:
    """The 68 landmarks plus ten points lifted above the brows along the face's axis."""
    eyes = (landmarks[RIGHT_EYE].mean(axis=0) + landmarks[LEFT_EYE].mean(axis=0)) / 2
    axis = eyes - landmarks[_CHIN]
    length = float(np.linalg.norm(axis))
    lift = axis / max(length, 1e-6) * length * height
    return np.vstack((landmarks, landmarks[_BROWS] + lift)).astype(np.float32)


def _delaunay(points: Points) -> Triangles:
    """Triangle vertex indices of a Delaunay mesh over ``points``."""
    origin = points.min(axis=0) - 2
    shifted = points - origin
    width, height = (shifted.max(axis=0) + 4).astype(int)
    subdivision = cv2.Subdiv2D((0, 0, int(width), int(height)))
    for x, y in shifted:
        subdivision.insert((float(x), float(y)))
    triangles = []
    for triangle in np.asarray(subdivision.getTriangleList()).reshape(-1, 3, 2):
        distances = np.linalg.norm(shifted[np.newaxis] - triangle[:, np.newaxis], axis=2)
        indices = distances.argmin(axis=1)
        if distances[np.arange(3), indices].max() < 1.0 and len(set(indices.tolist())) == 3:
            triangles.append(indices)
    return np.array(triangles, dtype=np.int32)


def _warp_mesh(
    source: VisionFrame,
    canvas: VisionFrame,
    source_points: Points,
    canvas_points: Points,
    triangles: Triangles,
) -> None:
    """Piecewise-affine warp of ``source`` onto ``canvas`` (in place), one ``remap`` in all.

    Each canvas pixel is labelled with the triangle that covers it; the inverse affine
    maps of all triangles are then applied at once, so the cost is one pass over the ROI
    instead of a warp per triangle.
    """
    height, width = canvas.shape[:2]
    labels = np.full((height, width), -1, dtype=np.int32)
    inverse = np.empty((len(triangles), 2, 3), dtype=np.float32)
    for index, triangle in enumerate(triangles):
        inverse[index] = cv2.getAffineTransform(canvas_points[triangle], source_points[triangle])
        cv2.fillConvexPoly(labels, np.round(canvas_points[triangle]).astype(np.int32), index)
    ys, xs = np.nonzero(labels >= 0)
    if len(xs) == 0:
        return
    maps = inverse[labels[ys, xs]]
    map_x = np.full((height, width), -1.0, dtype=np.float32)
    map_y = np.full((height, width), -1.0, dtype=np.float32)
    map_x[ys, xs] = maps[:, 0, 0] * xs + maps[:, 0, 1] * ys + maps[:, 0, 2]
    map_y[ys, xs] = maps[:, 1, 0] * xs + maps[:, 1, 1] * ys + maps[:, 1, 2]
    warped = cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    canvas[ys, xs] = warped[ys, xs]


class LandmarkSwapper:
    """Swaps faces along 68 landmarks; needs ``Face.landmarks68`` on source and target."""

    name = "landmark"

    def __init__(self, options: LandmarkSwapOptions | None = None) -> None:
        self._options = options or LandmarkSwapOptions()
        self._mesh_cache: dict[int, Triangles] = {}

    def swap(self, frame: VisionFrame, target: Face, source: SourceIdentity) -> FacePatch:
        source_landmarks = source.face.landmarks68
        target_landmarks = target.landmarks68
        if source_landmarks is None or target_landmarks is None:
            raise NoFaceError("the landmark swapper needs 68 landmarks on both faces")
        options = self._options
        affine, _ = cv2.estimateAffine2D(_anchors(source_landmarks), _anchors(target_landmarks))
        if affine is None:
            return _empty_patch()
        mapped = cv2.transform(source_landmarks[np.newaxis], affine)[0].astype(np.float32)
        destination = target_landmarks.copy()
        destination[_INNER] = mapped[_INNER]
        blend = options.jaw_blend
        destination[JAW] = blend * mapped[JAW] + (1 - blend) * target_landmarks[JAW]
        source_points = _with_forehead(source_landmarks, options.forehead)
        destination_points = np.vstack(
            (
                destination,
                blend * _with_forehead(mapped, options.forehead)[68:]
                + (1 - blend) * _with_forehead(target_landmarks, options.forehead)[68:],
            )
        ).astype(np.float32)

        height, width = frame.shape[:2]
        x, y, w, h = cv2.boundingRect(np.vstack((destination_points, target_landmarks)))
        face_size = max(w, h)
        pad = int(0.1 * face_size)
        x1, y1 = max(0, x - pad), max(0, y - pad)
        x2, y2 = min(width, x + w + pad), min(height, y + h + pad)
        if x2 - x1 < 8 or y2 - y1 < 8:
            return _empty_patch()
        region = frame[y1:y2, x1:x2]
        local = (destination_points - (x1, y1)).astype(np.float32)

        canvas = region.copy()
        _warp_mesh(source.frame, canvas, source_points, local, self._mesh(source, source_points))

        outline = np.vstack((local[JAW], local[68:]))
        erode = max(3, int(options.erode * face_size) | 1)
        feather = options.feather * face_size
        alpha = region_mask(region.shape[:2], outline, erode, feather=feather)
        pixels = _match_low_frequencies(canvas, region, alpha > 0, options.color_sigma * face_size)
        return FacePatch(x1, y1, pixels, alpha)

    def _mesh(self, source: SourceIdentity, source_points: Points) -> Triangles:
        key = id(source.face)
        mesh = self._mesh_cache.get(key)
        if mesh is None:  # replaced whole, never mutated: renders may run on several threads
            mesh = _delaunay(source_points)
            self._mesh_cache = {key: mesh}
        return mesh


def _match_low_frequencies(
    pixels: VisionFrame, reference: VisionFrame, inside: npt.NDArray[np.bool_], sigma: float
) -> VisionFrame:
    """``pixels`` with the reference's colour and shading, keeping its own detail.

    The correction is a normalised blur of the difference, wide by design, so it is
    computed at a quarter of the resolution (or less) and scaled back up.
    """
    height, width = inside.shape
    step = max(1, int(sigma / 4))
    small = (max(1, width // step), max(1, height // step))
    weight = inside.astype(np.float32)
    difference = (reference.astype(np.float32) - pixels.astype(np.float32)) * weight[..., None]
    numerator = cv2.GaussianBlur(
        cv2.resize(difference, small, interpolation=cv2.INTER_AREA), (0, 0), sigma / step
    )
    denominator = cv2.GaussianBlur(
        cv2.resize(weight, small, interpolation=cv2.INTER_AREA), (0, 0), sigma / step
    )
    correction = cv2.resize(
        numerator / np.maximum(denominator, 1e-3)[..., None],
        (width, height),
        interpolation=cv2.INTER_LINEAR,
    )
    corrected = pixels.astype(np.float32) + np.asarray(correction, dtype=np.float32)
    return np.clip(np.rint(corrected), 0, 255).astype(np.uint8)


def _empty_patch() -> FacePatch:
    return FacePatch(0, 0, np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), np.float32))
