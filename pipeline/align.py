"""Face alignment: named landmark templates and the similarity warps onto them."""

import cv2
import numpy as np

from pipeline.types import FaceLandmark5, Matrix, VisionFrame

ARCFACE_112: FaceLandmark5 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
"""insightface's ArcFace destination points for a 112×112 crop (also inswapper's, scaled)."""

FFHQ_512: FaceLandmark5 = (
    np.array(
        [
            [0.37691676, 0.46864664],
            [0.62285697, 0.46912813],
            [0.50123859, 0.61331904],
            [0.39308822, 0.72541100],
            [0.61150205, 0.72490465],
        ],
        dtype=np.float32,
    )
    * 512.0
)
"""The FFHQ alignment GFPGAN-style enhancers expect, for a 512×512 crop."""


def scale_template(template: FaceLandmark5, template_size: int, size: int) -> FaceLandmark5:
    """The template for a crop of ``size`` pixels (``template`` is defined at ``template_size``)."""
    return (template * (size / template_size)).astype(np.float32)


def template_for(template: FaceLandmark5, size: int) -> FaceLandmark5:
    """``template`` placed in a ``size``×``size`` crop, as insightface's ``estimate_norm``.

    ArcFace points are defined at 112 px: sizes that are multiples of 112 scale them,
    others (inswapper's 128) scale by ``size / 128`` and shift right by ``8 * ratio``.
    FFHQ points are defined at 512 px and simply scale.
    """
    if template is FFHQ_512:
        return scale_template(template, 512, size)
    if size % 112 == 0:
        return scale_template(template, 112, size)
    ratio = size / 128.0
    return (template * ratio + np.array([8.0 * ratio, 0.0], dtype=np.float32)).astype(np.float32)


def estimate_norm(kps5: FaceLandmark5, size: int, template: FaceLandmark5 = ARCFACE_112) -> Matrix:
    """Similarity transform from image points to ``template`` in a ``size`` crop."""
    destination = template_for(template, size)
    matrix, _ = cv2.estimateAffinePartial2D(kps5.astype(np.float32), destination, method=cv2.LMEDS)
    if matrix is None:  # degenerate landmarks (all on one point): fall back to least squares
        matrix, _ = cv2.estimateAffinePartial2D(kps5.astype(np.float32), destination)
    return np.asarray(matrix, dtype=np.float64)


def warp_face(
    frame: VisionFrame, kps5: FaceLandmark5, template: FaceLandmark5, size: int
) -> tuple[VisionFrame, Matrix]:
    """The aligned ``size``×``size`` crop of a face and the matrix that produced it."""
    matrix = estimate_norm(kps5, size, template)
    crop = cv2.warpAffine(frame, matrix, (size, size), borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(crop, dtype=np.uint8), matrix
