"""Detection reuse: faces tracked between detections stay where a detector would put them."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.detect import DetectorConfig, RetinaFaceDetector
from pipeline.landmarks import LandmarkPredictor, to_gray
from pipeline.models import ModelRegistry, create_session, resolve_providers
from pipeline.track import FaceTracker, _flow
from tests.pipeline.media_fixtures import panning_frames
from tests.pipeline.photos import read, t1_path


@pytest.mark.parametrize("refit", [True, False], ids=["refit-68", "flow-only"])
def test_tracker_detects_every_nth_frame_and_follows_faces_in_between(
    model_dir: Path, refit: bool
) -> None:
    registry = ModelRegistry(model_dir)
    detector = RetinaFaceDetector(
        create_session(registry.path("retinaface"), resolve_providers(["cpu"])), DetectorConfig()
    )
    calls = []

    def counting_detect(frame):
        calls.append(1)
        return detector.detect(frame)

    landmarker = LandmarkPredictor(registry.path("dlib68"))
    fits = []
    predict = landmarker.predict
    landmarker.predict = lambda *args: fits.append(1) or predict(*args)  # type: ignore[method-assign]
    tracker = FaceTracker(counting_detect, landmarker, 3, refit=refit)
    frames = list(panning_frames(read(t1_path()), 30, (960, 540)))[:12]
    for index, frame in enumerate(frames):
        tracked = tracker.faces(frame)
        fresh = detector.detect(frame)
        if index % 3 == 0:
            assert len(tracked) == len(fresh) >= 5
        else:  # a face entering or leaving at the edge shows up at the next detection
            assert abs(len(tracked) - len(fresh)) <= 1
        for b in fresh:
            if b.box[0] < 0 or b.box[2] > 960:
                continue
            a = min(tracked, key=lambda face: float(np.linalg.norm(face.kps5 - b.kps5)))
            assert a.landmarks68 is not None
            error = np.linalg.norm(a.kps5 - b.kps5, axis=1).mean()
            assert error < 0.08 * b.width, (index, error, b.width)
    assert len(calls) == 4
    detected = 4 * 6  # at most six faces on each detection frame
    assert (len(fits) > detected) if refit else (len(fits) <= detected)


def test_tracker_drops_a_face_that_leaves_and_redetects(model_dir: Path) -> None:
    registry = ModelRegistry(model_dir)
    detector = RetinaFaceDetector(
        create_session(registry.path("retinaface"), resolve_providers(["cpu"])), DetectorConfig()
    )
    tracker = FaceTracker(detector.detect, LandmarkPredictor(registry.path("dlib68")), 100)
    frame = read(t1_path())
    assert len(tracker.faces(frame)) == 6
    blank = np.zeros_like(frame)
    blank[:, :600] = frame[:, :600]  # the right half of the picture is gone
    kept = tracker.faces(blank)
    assert 1 <= len(kept) < 6
    assert all(face.box[0] < 600 for face in kept)


def test_an_engine_reused_across_runs_never_tracks_into_the_next_input(
    model_dir: Path, tmp_path: Path
) -> None:
    """Tracking lives for one video only: a following run's source photo and target are
    analysed from scratch, whatever their size."""
    from pipeline.engine import build_engine
    from pipeline.options import RunOptions
    from pipeline.run import process_file
    from tests.pipeline.media_fixtures import make_clip
    from tests.pipeline.photos import write_astronaut

    engine = build_engine(RunOptions(model_dir=model_dir))
    source = write_astronaut(tmp_path)
    clip = make_clip(
        tmp_path / "clip.mp4", panning_frames(read(t1_path()), 7, (640, 360)), size=(640, 360)
    )
    first = process_file([source], clip, tmp_path / "a.mp4", engine.options, engine=engine)
    assert engine.tracker is None
    again = process_file([source], clip, tmp_path / "b.mp4", engine.options, engine=engine)
    image = process_file([source], t1_path(), tmp_path / "c.jpg", engine.options, engine=engine)
    assert first.faces_swapped == again.faces_swapped > 0
    assert image.faces_found == 6


@pytest.mark.parametrize(
    "corner",
    [(400, 220), (3, 5), (860, 440), (-40, 300)],
    ids=["inside", "top-left edge", "bottom-right edge", "partly outside"],
)
def test_flow_on_the_face_region_gives_the_points_flow_on_the_whole_frame_gives(
    corner: tuple[int, int],
) -> None:
    """The tracker runs Lucas-Kanade on a crop around the face; a wrong offset, a crop
    that cuts the window or a pyramid sampled at another phase would move the points."""
    frames = [to_gray(frame) for frame in panning_frames(read(t1_path()), 30, (960, 540))]
    previous, gray = frames[10], frames[11]
    grid = np.stack(np.meshgrid(np.linspace(0, 90, 9), np.linspace(0, 100, 8)), -1)
    points = (grid.reshape(-1, 1, 2) + corner).astype(np.float32)
    whole, whole_status, _ = cv2.calcOpticalFlowPyrLK(
        previous, gray, points, points.copy(), winSize=(21, 21), maxLevel=3
    )
    flowed, status = _flow(previous, gray, points)
    assert flowed.shape == points.shape and flowed.dtype == np.float32
    found = whole_status.reshape(-1) == 1
    assert found.sum() >= 20
    assert np.array_equal(status.reshape(-1) == 1, found)
    assert np.abs(flowed[found] - whole[found]).max() < 0.05
