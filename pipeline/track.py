"""Detection reuse across video frames: detect every N frames, track faces in between.

Between detections each face's 68 landmarks are followed with pyramidal Lucas-Kanade
optical flow from the previous frame; the similarity transform of the points that were
found moves its box and five landmarks (so they keep the detector's definition and do not
jump when the next detection arrives), and the 68-point predictor then re-fits the
landmarks inside the moved box. All of it costs a few milliseconds a face, against tens
of milliseconds for a detector pass. A face that leaves the frame, or whose aligned appearance no
longer matches what was detected (it turned away, something covered it), is dropped and
forces a detection on the next frame; a face that enters is picked up at the next
detection.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np
import numpy.typing as npt

from pipeline.align import ARCFACE_112, warp_face
from pipeline.faces import Face
from pipeline.landmarks import GrayFrame, LandmarkPredictor, to_gray
from pipeline.types import VisionFrame

Detect = Callable[[VisionFrame], list[Face]]
Appearance = npt.NDArray[np.float32]

_PATCH_SIZE = 32
_MIN_CORRELATION = 0.5
"""Correlation of the aligned 32×32 face with its detected look below which it is lost."""
_FLOW_WINDOW = (21, 21)
_FLOW_LEVELS = 3
_FLOW_MARGIN = 160
"""Pixels kept around a face's points for the optical flow: ≈ 100 px of window at the
coarsest pyramid level plus ≈ 60 px of motion between two frames."""


@dataclass(frozen=True)
class _Track:
    face: Face
    appearance: Appearance
    """The aligned face as it looked when it was detected."""


def _appearance(gray: GrayFrame, face: Face) -> Appearance:
    """The face aligned at 32 px, zero-mean and unit-norm, for normalised correlation."""
    crop, _ = warp_face(gray, face.kps5, ARCFACE_112, _PATCH_SIZE)
    vector = crop.astype(np.float32).ravel()
    vector -= vector.mean()
    return (vector / max(float(np.linalg.norm(vector)), 1e-6)).astype(np.float32)


def _flow(
    previous: GrayFrame, gray: GrayFrame, points: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    """Pyramidal Lucas-Kanade for ``points`` (N×1×2), on the region around them only.

    The pyramids are built for that region instead of the whole frame (a 720p frame is
    ≈ 3× a face's region, a 1080p frame ≈ 5×), which is most of the cost. The region's
    corner sits on a multiple of 2^levels so every pyramid level samples the same pixels
    as the whole frame's would: the points come out as on the whole frame (within
    ~0.01 px, from the borders of the coarsest levels).
    """
    height, width = gray.shape[:2]
    step = 1 << _FLOW_LEVELS
    low = np.floor(points.reshape(-1, 2).min(axis=0)) - _FLOW_MARGIN
    high = np.ceil(points.reshape(-1, 2).max(axis=0)) + _FLOW_MARGIN
    x1 = int(np.clip(low[0], 0, width)) // step * step
    y1 = int(np.clip(low[1], 0, height)) // step * step
    x2, y2 = int(np.clip(high[0], 0, width)), int(np.clip(high[1], 0, height))
    if x2 - x1 < 2 * _FLOW_WINDOW[0] or y2 - y1 < 2 * _FLOW_WINDOW[1]:
        x1, y1, x2, y2 = 0, 0, width, height  # points far outside: the whole frame decides
    offset = np.array([x1, y1], dtype=np.float32)
    local = np.ascontiguousarray(points - offset, dtype=np.float32)
    flowed, status, _ = cv2.calcOpticalFlowPyrLK(
        previous[y1:y2, x1:x2],
        gray[y1:y2, x1:x2],
        local,
        local.copy(),
        winSize=_FLOW_WINDOW,
        maxLevel=_FLOW_LEVELS,
    )
    return (flowed + offset).astype(np.float32), np.asarray(status, dtype=np.uint8)


class FaceTracker:
    """Yields the faces of consecutive frames, running ``detect`` every ``interval`` frames."""

    def __init__(
        self, detect: Detect, landmarker: LandmarkPredictor, interval: int, *, refit: bool = True
    ) -> None:
        """``refit=False``: between detections the 68 points only follow the optical flow
        (for callers that use just the box and five landmarks), a few ms less per face."""
        if interval < 1:
            raise ValueError("the detection interval must be at least 1")
        self._detect = detect
        self._landmarker = landmarker
        self._interval = interval
        self._refit = refit
        self._since_detection = 0
        self._tracks: list[_Track] = []
        self._lost = False
        self._previous_gray: GrayFrame | None = None

    def faces(self, frame: VisionFrame) -> list[Face]:
        """The faces of ``frame``, with 68 landmarks."""
        gray = to_gray(frame)
        previous, self._previous_gray = self._previous_gray, gray
        due = (
            self._lost
            or not self._tracks
            or previous is None
            or previous.shape != gray.shape
            or self._since_detection >= self._interval - 1
        )
        if due:
            self._since_detection = 0
            self._lost = False
            self._tracks = []
            for found in self._detect(frame):
                face = found.with_landmarks(self._landmarker.predict(frame, found, gray))
                self._tracks.append(_Track(face, _appearance(gray, face)))
        else:
            assert previous is not None
            self._since_detection += 1
            followed = [self._follow(frame, previous, gray, track) for track in self._tracks]
            self._tracks = [track for track in followed if track is not None]
            self._lost = len(self._tracks) < len(followed)
        return [track.face for track in self._tracks]

    def _follow(
        self, frame: VisionFrame, previous: GrayFrame, gray: GrayFrame, track: _Track
    ) -> _Track | None:
        face = track.face
        assert face.landmarks68 is not None  # every tracked face was annotated
        points = face.landmarks68.reshape(-1, 1, 2)
        flowed, status = _flow(previous, gray, points)
        found = status.reshape(-1).astype(bool)
        if found.sum() < 20:
            return None
        matrix, _ = cv2.estimateAffinePartial2D(
            points[found], flowed[found], method=cv2.RANSAC, ransacReprojThreshold=3.0
        )
        if matrix is None:
            return None
        corners = np.array([[face.box[0], face.box[1]], [face.box[2], face.box[3]]], np.float32)
        moved = cv2.transform(corners[np.newaxis], matrix)[0]
        box = np.concatenate((moved.min(axis=0), moved.max(axis=0))).astype(np.float32)
        height, width = frame.shape[:2]
        visible_x = np.clip(box[[0, 2]], 0, width)
        visible_y = np.clip(box[[1, 3]], 0, height)
        visible = (visible_x[1] - visible_x[0]) * (visible_y[1] - visible_y[0])
        if visible < 0.5 * max(face.area, 1.0):
            return None
        kps5 = cv2.transform(face.kps5[np.newaxis], matrix)[0].astype(np.float32)
        moved_face = replace(face, box=box, kps5=kps5)
        landmarks = (
            self._landmarker.predict(frame, moved_face, gray)
            if self._refit
            else cv2.transform(face.landmarks68[np.newaxis], matrix)[0].astype(np.float32)
        )
        moved_face = moved_face.with_landmarks(landmarks)
        if float(_appearance(gray, moved_face) @ track.appearance) < _MIN_CORRELATION:
            return None
        return _Track(moved_face, track.appearance)
