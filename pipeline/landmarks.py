"""68-point landmarks from dlib's shape predictor (iBUG 300-W layout)."""

from pathlib import Path

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from pipeline.faces import Face
from pipeline.types import FaceLandmark68, VisionFrame

GrayFrame = npt.NDArray[np.uint8]

JAW = slice(0, 17)
RIGHT_BROW = slice(17, 22)
LEFT_BROW = slice(22, 27)
NOSE = slice(27, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
MOUTH = slice(48, 68)


class LandmarkPredictor:
    """Fits 68 landmarks inside a detected face box."""

    def __init__(self, model_path: Path) -> None:
        self._predictor = dlib.shape_predictor(str(model_path))

    def predict(
        self, frame: VisionFrame, face: Face, gray: GrayFrame | None = None
    ) -> FaceLandmark68:
        """The landmarks of ``face``; pass ``gray`` (the frame in grayscale) when calling
        for several faces of one frame, so it is converted once."""
        x1, y1, x2, y2 = (float(value) for value in face.box)
        # dlib was trained on its HOG detector's boxes, which sit a little lower and are
        # square; nudging the detector's box that way keeps the jaw line on the chin.
        side = max(x2 - x1, y2 - y1)
        center_x, center_y = (x1 + x2) / 2, (y1 + y2) / 2 + 0.06 * side
        half = side / 2
        rectangle = dlib.rectangle(
            round(center_x - half),
            round(center_y - half),
            round(center_x + half),
            round(center_y + half),
        )
        if gray is None:
            gray = to_gray(frame)
        shape = self._predictor(gray, rectangle)
        return np.array([[point.x, point.y] for point in shape.parts()], dtype=np.float32)

    def annotate(self, frame: VisionFrame, faces: list[Face]) -> list[Face]:
        gray = to_gray(frame) if faces else None
        return [face.with_landmarks(self.predict(frame, face, gray)) for face in faces]


def to_gray(frame: VisionFrame) -> GrayFrame:
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
