"""Face masks: box (blur, padding) in crop space and region (landmark hull)."""

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from pipeline.types import Mask


@dataclass(frozen=True)
class BoxMaskOptions:
    blur: float = 0.3
    """Feather width as a fraction of the crop size (FaceFusion's --face-mask-blur)."""
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    """Top, right, bottom, left padding in percent of the crop (--face-mask-padding)."""


def box_mask(size: int, options: BoxMaskOptions) -> Mask:
    """A feathered rectangle covering an aligned ``size``×``size`` crop."""
    blur_amount = int(size * 0.5 * options.blur)
    blur_area = max(blur_amount // 2, 1)
    top, right, bottom, left = options.padding
    mask = np.ones((size, size), dtype=np.float32)
    mask[: max(blur_area, int(size * top / 100)), :] = 0
    mask[-max(blur_area, int(size * bottom / 100)) :, :] = 0
    mask[:, : max(blur_area, int(size * left / 100))] = 0
    mask[:, -max(blur_area, int(size * right / 100)) :] = 0
    if blur_amount > 0:
        mask = np.asarray(cv2.GaussianBlur(mask, (0, 0), blur_amount * 0.25), np.float32)
    return np.clip(mask, 0.0, 1.0).astype(np.float32)


def region_mask(
    shape: tuple[int, int], points: npt.NDArray[np.float32], erode: int, feather: float
) -> Mask:
    """The convex hull of ``points`` (in the mask's coordinates), eroded then feathered.

    Weights too small to change a rounded pixel are set to exactly zero, so the mask's
    support is precisely the set of pixels a blend may alter.
    """
    hard = np.zeros(shape, dtype=np.uint8)
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    cv2.fillConvexPoly(hard, hull, 255)
    if erode > 0:
        hard = np.asarray(cv2.erode(hard, np.ones((erode, erode), np.uint8)), np.uint8)
    soft = hard.astype(np.float32) / 255.0
    if feather > 0:
        soft = np.asarray(cv2.GaussianBlur(soft, (0, 0), feather), np.float32)
    soft[soft < _NEGLIGIBLE] = 0.0
    return soft.astype(np.float32)


_NEGLIGIBLE = 1.0 / 512
"""A blend weight below this cannot move an 8-bit pixel by one step."""
