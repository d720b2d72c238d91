"""ROI paste-back gives the same pixels as a full-frame warp, without touching the rest."""

import cv2
import numpy as np

from pipeline.align import ARCFACE_112, warp_face
from pipeline.mask import BoxMaskOptions, box_mask, region_mask
from pipeline.paste import blend_patch, patch_from_crop


def full_frame_paste(frame, crop, matrix, mask):
    """insightface's INSwapper.get(paste_back=True) way: everything at frame size, float."""
    inverse = cv2.invertAffineTransform(matrix)
    height, width = frame.shape[:2]
    warped = cv2.warpAffine(crop, inverse, (width, height), borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, inverse, (width, height), borderValue=0.0)[..., None]
    blended = warped.astype(np.float32) * alpha + frame.astype(np.float32) * (1 - alpha)
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    out[alpha[..., 0] <= 0] = frame[alpha[..., 0] <= 0]
    return out


def test_roi_paste_matches_full_frame_paste_and_leaves_the_rest_alone() -> None:
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    kps = np.array([[600, 300], [680, 302], [640, 350], [610, 390], [672, 392]], np.float32)
    crop, matrix = warp_face(frame, kps, ARCFACE_112, 128)
    crop = 255 - crop  # something visibly different to paste
    mask = box_mask(128, BoxMaskOptions(blur=0.3))

    expected = full_frame_paste(frame, crop, matrix, mask)
    patch = patch_from_crop(frame.shape, crop, matrix, mask)
    actual = frame.copy()
    blend_patch(actual, patch)

    assert patch.pixels.shape[0] * patch.pixels.shape[1] < 0.1 * 720 * 1280
    difference = np.abs(actual.astype(int) - expected.astype(int))
    # warpAffine's fixed-point sub-pixel steps round differently for a shifted origin
    assert difference.max() <= 6
    assert difference.mean() < 0.05
    changed = np.any(actual != frame, axis=2)
    ys, xs = np.nonzero(changed)
    assert ys.min() >= patch.y1 and ys.max() < patch.y2
    assert xs.min() >= patch.x1 and xs.max() < patch.x2


def test_patch_at_the_frame_edge_is_clipped() -> None:
    frame = np.zeros((200, 200, 3), np.uint8)
    kps = np.array([[5, 20], [45, 20], [25, 45], [10, 65], [40, 65]], np.float32) - (20, 0)
    crop, matrix = warp_face(frame, kps, ARCFACE_112, 128)
    patch = patch_from_crop(
        frame.shape, np.full_like(crop, 200), matrix, box_mask(128, BoxMaskOptions())
    )
    blend_patch(frame, patch)
    assert patch.x1 == 0 and patch.x2 <= 200
    assert frame[:, :60].max() > 0 and frame[:, 120:].max() == 0


def test_region_mask_feathers_the_hull_and_is_exactly_zero_beyond() -> None:
    points = np.array([[20, 20], [80, 20], [80, 80], [20, 80]], np.float32)
    mask = region_mask((100, 100), points, erode=5, feather=3.0)
    assert mask[:10].max() == 0 and mask[:, 90:].max() == 0
    assert mask[50, 50] > 0.99
    assert 0 < mask[22, 50] < 0.9  # a soft edge, not a step


def test_box_mask_padding_blanks_the_padded_side() -> None:
    mask = box_mask(128, BoxMaskOptions(blur=0.0, padding=(50, 0, 0, 0)))
    assert mask[:63].max() == 0
    assert mask[100, 64] == 1.0
