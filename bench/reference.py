"""The reference face-swap loop everyone runs (roop, Deep-Live-Cam, insightface's example).

``cv2.VideoCapture`` reads a frame, faces are detected on every frame, each face is
swapped with insightface's own ``INSwapper.get(..., paste_back=True)`` (a full-frame float
warp and blend per face) and ``cv2.VideoWriter`` writes the result. Only the detector is
Enclave's: the same RetinaFace ONNX file and decoding run on a plain onnxruntime session,
so detection costs the same on both sides and the comparison is about everything else.
"""

import contextlib
import io
import warnings
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from insightface.app.common import Face as InsightFace
from insightface.model_zoo.arcface_onnx import ArcFaceONNX
from insightface.model_zoo.inswapper import INSwapper

from pipeline.detect import DetectorConfig, RetinaFaceDetector
from pipeline.types import VisionFrame

CPU = ["CPUExecutionProvider"]

# insightface's alignment calls scikit-image's deprecated ``estimate`` on every face
warnings.filterwarnings("ignore", category=FutureWarning, module="insightface")


def plain_session(path: Path, providers: list[str] | None = None) -> ort.InferenceSession:
    """An onnxruntime session with onnxruntime's default threads, as the reference scripts make."""
    options = ort.SessionOptions()
    options.log_severity_level = 3  # quiet, as Enclave's sessions are; no effect on speed
    return ort.InferenceSession(str(path), sess_options=options, providers=providers or CPU)


class ReferenceLoop:
    """Detector, recogniser and swapper loaded once, as the reference scripts do."""

    def __init__(
        self,
        detector: Path,
        recognizer: Path,
        swapper: Path,
        providers: list[str] | None = None,
    ) -> None:
        self._detector = RetinaFaceDetector(plain_session(detector, providers), DetectorConfig())
        self._recognizer = ArcFaceONNX(str(recognizer), plain_session(recognizer, providers))
        with contextlib.redirect_stdout(io.StringIO()):  # INSwapper prints its input shape
            self._swapper = INSwapper(str(swapper), plain_session(swapper, providers))

    def faces(self, frame: VisionFrame) -> list[InsightFace]:
        """Every face in ``frame`` as insightface's ``Face`` (bbox, kps, det_score)."""
        return [
            InsightFace(bbox=face.box, kps=face.kps5, det_score=face.score)
            for face in self._detector.detect(frame)
        ]

    def source_face(self, image: VisionFrame) -> InsightFace:
        """The largest face of ``image`` with its ArcFace embedding."""
        faces = self.faces(image)
        if not faces:
            raise ValueError("no face in the source image")
        face = max(faces, key=lambda f: float((f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])))
        self._recognizer.get(image, face)
        return face

    def swap_frame(self, frame: VisionFrame, source: InsightFace) -> tuple[VisionFrame, int]:
        """Detect, then swap every face with a full-frame paste; returns (frame, faces)."""
        faces = self.faces(frame)
        for face in faces:
            frame = self._swapper.get(frame, face, source, paste_back=True)
        return frame, len(faces)

    def run_video(self, source: InsightFace, target: Path, output: Path) -> tuple[int, int]:
        """The whole loop over a video file; returns (frames, faces swapped)."""
        capture = cv2.VideoCapture(str(target))
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        size = (
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        writer = cv2.VideoWriter(str(output), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
        frames = swapped = 0
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                result, faces = self.swap_frame(np.asarray(frame, np.uint8), source)
                writer.write(np.ascontiguousarray(result))
                frames += 1
                swapped += faces
        finally:
            capture.release()
            writer.release()
        return frames, swapped
