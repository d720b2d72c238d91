"""Paste-back of one swapped face: Enclave's ROI paste against insightface's full-frame paste.

    python -m bench.paste            # 1080p and 4K, close-up and group faces, 25 runs each
    python -m bench.paste --quick    # 5 runs (the smoke test)

Enclave: ``pipeline.paste.patch_from_crop`` + ``blend_patch`` (every array sized to the
face's region of interest). Reference: the ``paste_back=True`` branch of insightface's
``INSwapper.get``, copied verbatim below and checked against ``INSwapper.get`` itself
before timing. Both start from the same 128×128 swapped crop and alignment matrix.
"""

import argparse
import contextlib
import io
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from bench.reference import plain_session
from bench.report import header, ratio_line, table
from bench.workload import (
    ONE_FACE,
    RESOLUTIONS,
    SWAPPER,
    THREE_FACES,
    Scene,
    drifting_frames,
    prepare_models,
)
from pipeline.align import ARCFACE_112, warp_face
from pipeline.detect import DetectorConfig, RetinaFaceDetector
from pipeline.mask import BoxMaskOptions, box_mask
from pipeline.models import ModelRegistry
from pipeline.paste import blend_patch, patch_from_crop
from pipeline.types import Matrix, VisionFrame

warnings.filterwarnings("ignore", category=FutureWarning, module="insightface")
CROP = 128


def insightface_paste_back(
    img: VisionFrame,
    bgr_fake: Any,  # untyped like the original: its arrays change dtype as they are reused
    aimg: VisionFrame,
    M: Matrix,  # noqa: N803 - insightface's name, kept so the copy diffs cleanly
) -> VisionFrame:
    """insightface 0.7.3 ``INSwapper.get``'s ``paste_back`` branch, unchanged but for names."""
    target_img = img
    fake_diff: Any = bgr_fake.astype(np.float32) - aimg.astype(np.float32)
    fake_diff = np.abs(fake_diff).mean(axis=2)
    fake_diff[:2, :] = 0
    fake_diff[-2:, :] = 0
    fake_diff[:, :2] = 0
    fake_diff[:, -2:] = 0
    IM = cv2.invertAffineTransform(M)
    img_white: Any = np.full((aimg.shape[0], aimg.shape[1]), 255, dtype=np.float32)
    size = (target_img.shape[1], target_img.shape[0])
    bgr_fake = cv2.warpAffine(bgr_fake, IM, size, borderValue=0.0)
    img_white = cv2.warpAffine(img_white, IM, size, borderValue=0.0)
    fake_diff = cv2.warpAffine(fake_diff, IM, size, borderValue=0.0)
    img_white[img_white > 20] = 255
    fthresh = 10
    fake_diff[fake_diff < fthresh] = 0
    fake_diff[fake_diff >= fthresh] = 255
    img_mask: Any = img_white
    mask_h_inds, mask_w_inds = np.where(img_mask == 255)
    mask_h = np.max(mask_h_inds) - np.min(mask_h_inds)
    mask_w = np.max(mask_w_inds) - np.min(mask_w_inds)
    mask_size = int(np.sqrt(mask_h * mask_w))
    k = max(mask_size // 10, 10)
    kernel = np.ones((k, k), np.uint8)
    img_mask = cv2.erode(img_mask, kernel, iterations=1)
    kernel = np.ones((2, 2), np.uint8)
    fake_diff = cv2.dilate(fake_diff, kernel, iterations=1)
    k = max(mask_size // 20, 5)
    blur_size = (2 * k + 1, 2 * k + 1)
    img_mask = cv2.GaussianBlur(img_mask, blur_size, 0)
    blur_size = (11, 11)
    fake_diff = cv2.GaussianBlur(fake_diff, blur_size, 0)
    img_mask /= 255
    fake_diff /= 255
    img_mask = np.reshape(img_mask, [img_mask.shape[0], img_mask.shape[1], 1])
    fake_merged = img_mask * bgr_fake + (1 - img_mask) * target_img.astype(np.float32)
    return np.asarray(fake_merged.astype(np.uint8))


class _FixedOutput:
    """Stands in for the session inside ``INSwapper.get``: returns a prepared crop."""

    def __init__(self, crop_rgb01: npt.NDArray[np.float32]) -> None:
        self._output = crop_rgb01

    def run(self, _names: object, _feeds: object) -> list[npt.NDArray[np.float32]]:
        return [self._output]


def check_copy_matches_insightface(
    frame: VisionFrame, kps: npt.NDArray[np.float32], model: Path
) -> None:
    """The copied branch must give exactly what ``INSwapper.get(paste_back=True)`` gives."""
    from insightface.app.common import Face
    from insightface.model_zoo.inswapper import INSwapper
    from insightface.utils import face_align

    aimg, M = face_align.norm_crop2(frame, kps, CROP)
    fake = fake_swap(aimg)
    rgb01 = (fake[:, :, ::-1].astype(np.float32) / 255.0).transpose(2, 0, 1)[np.newaxis]
    with contextlib.redirect_stdout(io.StringIO()):
        swapper = INSwapper(str(model), session=plain_session(model))
    swapper.session = _FixedOutput(rgb01)  # the model's output is fixed; the paste is real
    source = Face(embedding=np.ones(swapper.emap.shape[0], np.float32))
    theirs = swapper.get(frame, Face(kps=kps), source, paste_back=True)
    ours = insightface_paste_back(frame, fake, aimg, M)
    if not np.array_equal(theirs, ours):
        raise SystemExit("the copied paste_back differs from INSwapper.get: update the copy")


def fake_swap(crop: VisionFrame) -> VisionFrame:
    """A stand-in for the model's output: the crop with visibly changed colours."""
    return np.ascontiguousarray(255 - crop)


def interleaved_medians(
    first: Callable[[], object], second: Callable[[], object], runs: int
) -> tuple[float, float]:
    """Median milliseconds of each, timed alternately so changing machine load hits both."""
    first(), second()  # warm caches and allocators
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for action, times in zip((first, second), samples, strict=True):
            started = time.perf_counter()
            action()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples[0]), statistics.median(samples[1])


def scene_frame(scene: Scene, resolution: str) -> VisionFrame:
    return next(drifting_frames(scene, 1, RESOLUTIONS[resolution]))


def measure(frame: VisionFrame, kps: npt.NDArray[np.float32], runs: int) -> tuple[float, float]:
    """(insightface ms, enclave ms) to paste one swapped crop of the face at ``kps``."""
    crop, matrix = warp_face(frame, kps, ARCFACE_112, CROP)
    fake = fake_swap(crop)
    target = frame.copy()  # Enclave blends in place; the reference returns a new frame
    mask = box_mask(CROP, BoxMaskOptions())
    return interleaved_medians(
        lambda: insightface_paste_back(frame, fake, crop, matrix),
        lambda: blend_patch(target, patch_from_crop(target.shape, fake, matrix, mask)),
        runs,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1080p close-up only, 3 runs")
    parser.add_argument("--runs", type=int, default=25)
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs
    cases = [("1080p", "close-up", ONE_FACE)]
    if not args.quick:
        cases += [("1080p", "group", THREE_FACES), ("4k", "close-up", ONE_FACE)]
        cases += [("4k", "group", THREE_FACES)]
    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as temporary:
        registry = ModelRegistry(prepare_models(Path(temporary)), allow_non_commercial=True)
        detector = RetinaFaceDetector(plain_session(registry.path("retinaface")), DetectorConfig())
        header(
            "paste-back of one face: Enclave ROI paste vs insightface full-frame paste",
            [
                f"median of {runs} interleaved runs per case; the same 128x128 crop and matrix; "
                "box mask on Enclave",
            ],
        )
        rows, ratios = [], {}
        for resolution, label, scene in cases:
            frame = scene_frame(scene, resolution)
            face = detector.detect(frame)[0]
            if scene is ONE_FACE:
                check_copy_matches_insightface(frame, face.kps5, registry.path(SWAPPER))
            reference_ms, enclave_ms = measure(frame, face.kps5, runs)
            ratios[(resolution, label)] = reference_ms / enclave_ms
            width = int(face.box[2] - face.box[0])
            rows.append(
                [
                    resolution,
                    f"{label} ({width} px)",
                    f"{reference_ms:.2f}",
                    f"{enclave_ms:.2f}",
                    f"{reference_ms / enclave_ms:.1f}x",
                ]
            )
        table(["frame", "face (box width)", "insightface ms", "enclave ms", "speed-up"], rows)
        headline = ("1080p", "close-up") if args.quick else ("4k", "close-up")
        ratio_line(
            f"insightface/enclave paste time at {' '.join(headline)}",
            ratios[headline],
            ">= 10x at 4k",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
