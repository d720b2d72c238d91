"""Face detection with five landmarks: RetinaFace (bundled default), YuNet, SCRFD.

One small class per model contract, each owning its pre- and post-processing, as
insightface's ``model_zoo`` does. The manifest (``ModelSpec.kind``) decides which class
loads a file, never the tensor shapes.
"""

import math
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from pipeline.faces import Face
from pipeline.types import VisionFrame

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class DetectorConfig:
    score_threshold: float = 0.5
    nms_threshold: float = 0.4
    max_side: int = 640
    """Frames are scaled down so their longer side is at most this many pixels."""


class FaceDetector(Protocol):
    def detect(self, frame: VisionFrame) -> list[Face]:
        """Faces in ``frame``, in frame coordinates, best score first."""


def _scale_to_fit(frame: VisionFrame, max_side: int) -> tuple[VisionFrame, float]:
    height, width = frame.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale == 1.0:
        return frame, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA)), scale


def _letterbox(frame: VisionFrame, side: int) -> tuple[VisionFrame, float]:
    """``frame`` scaled into the top-left of a ``side``×``side`` black square."""
    height, width = frame.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    canvas = np.zeros((side, side, 3), dtype=np.uint8)
    canvas[: size[1], : size[0]] = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return canvas, scale


def _non_maximum_suppression(
    boxes: FloatArray, scores: FloatArray, score_threshold: float, nms_threshold: float
) -> npt.NDArray[np.int64]:
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    xywh = np.column_stack((boxes[:, :2], boxes[:, 2:] - boxes[:, :2]))
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), score_threshold, nms_threshold)
    return np.asarray(keep, dtype=np.int64).reshape(-1)


def _faces_from(
    boxes: list[FloatArray],
    scores: list[FloatArray],
    kps: list[FloatArray],
    config: DetectorConfig,
    scale: float,
) -> list[Face]:
    """Faces from per-level candidates: score filter, NMS, best first, frame coordinates."""
    all_boxes = np.vstack(boxes).astype(np.float32)
    all_scores = np.concatenate(scores).astype(np.float32)
    all_kps = np.vstack(kps).astype(np.float32)
    candidates = all_scores >= config.score_threshold
    all_boxes, all_scores, all_kps = (
        all_boxes[candidates],
        all_scores[candidates],
        all_kps[candidates],
    )
    keep = _non_maximum_suppression(
        all_boxes, all_scores, config.score_threshold, config.nms_threshold
    )
    order = keep[np.argsort(-all_scores[keep])]
    return [
        Face(
            box=(all_boxes[index] / scale).astype(np.float32),
            kps5=(all_kps[index].reshape(5, 2) / scale).astype(np.float32),
            score=float(all_scores[index]),
        )
        for index in order
    ]


class RetinaFaceDetector:
    """RetinaFace mobilenet0.25 (biubug6 export): dynamic input size, BGR minus mean."""

    _STRIDES = (8, 16, 32)
    _ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))
    _MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)
    _VARIANCE = (0.1, 0.2)

    def __init__(self, session: ort.InferenceSession, config: DetectorConfig) -> None:
        self._session = session
        self._config = config
        self._input_name = session.get_inputs()[0].name

    def detect(self, frame: VisionFrame) -> list[Face]:
        scaled, scale = _scale_to_fit(frame, self._config.max_side)
        height, width = scaled.shape[:2]
        blob = (scaled.astype(np.float32) - self._MEAN).transpose(2, 0, 1)[np.newaxis]
        loc, conf, landmarks = self._session.run(None, {self._input_name: blob})
        anchors = self._anchors(width, height)
        centers, sizes = anchors[:, :2], anchors[:, 2:]
        variance_center, variance_size = self._VARIANCE
        box_centers = centers + loc[0][:, :2] * variance_center * sizes
        box_sizes = sizes * np.exp(loc[0][:, 2:] * variance_size)
        boxes = np.hstack((box_centers - box_sizes / 2, box_centers + box_sizes / 2))
        points = np.tile(centers, 5) + landmarks[0] * variance_center * np.tile(sizes, 5)
        boxes *= np.array([width, height] * 2, dtype=np.float32)
        points *= np.array([width, height] * 5, dtype=np.float32)
        scores = conf[0][:, 1].astype(np.float32)
        return _faces_from([boxes], [scores], [points], self._config, scale)

    def _anchors(self, width: int, height: int) -> FloatArray:
        rows = []
        for stride, sizes in zip(self._STRIDES, self._ANCHOR_SIZES, strict=True):
            columns, lines = math.ceil(width / stride), math.ceil(height / stride)
            xx, yy = np.meshgrid(np.arange(columns), np.arange(lines))
            centers = (np.column_stack((xx.ravel(), yy.ravel())) + 0.5) * stride
            centers = centers / np.array([width, height])
            for_sizes = np.array(sizes, dtype=np.float64)[:, np.newaxis] / [width, height]
            rows.append(
                np.hstack(
                    (np.repeat(centers, len(sizes), axis=0), np.tile(for_sizes, (len(centers), 1)))
                )
            )
        return np.vstack(rows).astype(np.float32)


class YuNetDetector:
    """YuNet 2023mar (OpenCV zoo): 640×640 BGR 0–255, score = sqrt(cls × obj)."""

    _STRIDES = (8, 16, 32)
    _SIDE = 640

    def __init__(self, session: ort.InferenceSession, config: DetectorConfig) -> None:
        self._session = session
        self._config = config
        self._input_name = session.get_inputs()[0].name
        self._output_names = [output.name for output in session.get_outputs()]

    def detect(self, frame: VisionFrame) -> list[Face]:
        canvas, scale = _letterbox(frame, self._SIDE)
        blob = canvas.astype(np.float32).transpose(2, 0, 1)[np.newaxis]
        outputs = dict(
            zip(self._output_names, self._session.run(None, {self._input_name: blob}), strict=True)
        )
        all_boxes, all_scores, all_points = [], [], []
        for stride in self._STRIDES:
            cls = outputs[f"cls_{stride}"][0, :, 0]
            obj = outputs[f"obj_{stride}"][0, :, 0]
            scores = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
            columns = self._SIDE // stride
            index = np.arange(len(scores))
            grid = np.column_stack((index % columns, index // columns)).astype(np.float32)
            bbox = outputs[f"bbox_{stride}"][0]
            centers = (grid + bbox[:, :2]) * stride
            sizes = np.exp(bbox[:, 2:]) * stride
            kps = outputs[f"kps_{stride}"][0].reshape(-1, 5, 2)
            points = ((kps + grid[:, np.newaxis, :]) * stride).reshape(-1, 10)
            all_boxes.append(np.hstack((centers - sizes / 2, centers + sizes / 2)))
            all_scores.append(scores)
            all_points.append(points)
        return _faces_from(all_boxes, all_scores, all_points, self._config, scale)


class ScrfdDetector:
    """SCRFD (insightface det_10g contract): 640×640 RGB, (x − 127.5) / 128, 2 anchors/cell."""

    _STRIDES = (8, 16, 32)
    _ANCHORS_PER_CELL = 2
    _SIDE = 640

    def __init__(self, session: ort.InferenceSession, config: DetectorConfig) -> None:
        self._session = session
        self._config = config
        self._input_name = session.get_inputs()[0].name

    def detect(self, frame: VisionFrame) -> list[Face]:
        canvas, scale = _letterbox(frame, self._SIDE)
        rgb = canvas[:, :, ::-1].astype(np.float32)
        blob = ((rgb - 127.5) / 128.0).transpose(2, 0, 1)[np.newaxis]
        outputs = self._session.run(None, {self._input_name: blob})
        count = len(self._STRIDES)
        all_boxes, all_scores, all_points = [], [], []
        for level, stride in enumerate(self._STRIDES):
            scores = outputs[level].reshape(-1)
            distances = outputs[level + count].reshape(-1, 4) * stride
            kps = outputs[level + 2 * count].reshape(-1, 10) * stride
            cells = self._SIDE // stride
            yy, xx = np.mgrid[:cells, :cells]
            centers = np.stack((xx, yy), axis=-1).reshape(-1, 2).astype(np.float32) * stride
            centers = np.repeat(centers, self._ANCHORS_PER_CELL, axis=0)
            boxes = np.hstack((centers - distances[:, :2], centers + distances[:, 2:]))
            points = np.tile(centers, 5) + kps
            all_boxes.append(boxes)
            all_scores.append(scores)
            all_points.append(points)
        return _faces_from(all_boxes, all_scores, all_points, self._config, scale)


DETECTOR_CLASSES: dict[str, type[RetinaFaceDetector | YuNetDetector | ScrfdDetector]] = {
    "retinaface": RetinaFaceDetector,
    "yunet": YuNetDetector,
    "scrfd": ScrfdDetector,
}
"""Detector class by ``ModelSpec.kind``."""
