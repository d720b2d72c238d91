"""Detection, landmarks and identity on real photos, through the hash-verified registry."""

from pathlib import Path

import numpy as np
import pytest

from pipeline.detect import DETECTOR_CLASSES, DetectorConfig
from pipeline.embed import SFaceEmbedder, cosine_similarity
from pipeline.landmarks import LandmarkPredictor
from pipeline.models import ModelRegistry, create_session, resolve_providers
from tests.pipeline.photos import astronaut, read, t1_path, tom_hanks_path

CPU = resolve_providers(["cpu"])


def detector(model_dir: Path, name: str, score: float = 0.5):
    registry = ModelRegistry(model_dir)
    kind = registry.get(name).kind
    return DETECTOR_CLASSES[kind](
        create_session(registry.path(name), CPU), DetectorConfig(score_threshold=score)
    )


@pytest.mark.parametrize("name", ["retinaface", "yunet"])
def test_bundled_detectors_find_every_face_with_landmarks_inside_the_box(
    model_dir: Path, name: str
) -> None:
    faces = detector(model_dir, name).detect(read(t1_path()))
    assert len(faces) == 6
    for face in faces:
        x1, y1, x2, y2 = face.box
        assert 60 < face.width < 200 and 60 < face.height < 220
        inside = (face.kps5[:, 0] > x1) & (face.kps5[:, 0] < x2)
        inside &= (face.kps5[:, 1] > y1) & (face.kps5[:, 1] < y2)
        assert inside.all()
        # eyes above the mouth, left eye left of the right eye (image coordinates)
        assert face.kps5[0, 0] < face.kps5[1, 0]
        assert face.kps5[:2, 1].max() < face.kps5[3:, 1].min()


def test_score_threshold_filters_faces(model_dir: Path) -> None:
    image = read(t1_path())
    assert len(detector(model_dir, "yunet", score=0.5).detect(image)) == 6
    assert len(detector(model_dir, "yunet", score=0.999).detect(image)) == 0


def test_detectors_agree_on_face_positions(model_dir: Path) -> None:
    image = read(t1_path())
    retina = sorted(detector(model_dir, "retinaface").detect(image), key=lambda f: f.box[0])
    yunet = sorted(detector(model_dir, "yunet").detect(image), key=lambda f: f.box[0])
    for a, b in zip(retina, yunet, strict=True):
        assert np.linalg.norm(a.kps5 - b.kps5, axis=1).mean() < 0.15 * a.width


def test_68_landmarks_outline_the_face(model_dir: Path) -> None:
    image = astronaut()
    (face,) = detector(model_dir, "retinaface").detect(image)
    points = LandmarkPredictor(ModelRegistry(model_dir).path("dlib68")).predict(image, face)
    assert points.shape == (68, 2)
    chin, nose_tip = points[8], points[30]
    assert chin[1] > nose_tip[1] > points[36:48, 1].mean()
    right_eye, left_eye = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    assert np.linalg.norm(right_eye - face.kps5[0]) < 0.1 * face.width
    assert np.linalg.norm(left_eye - face.kps5[1]) < 0.1 * face.width


def test_sface_tells_people_apart(model_dir: Path) -> None:
    registry = ModelRegistry(model_dir)
    embedder = SFaceEmbedder(create_session(registry.path("sface"), CPU))
    find = detector(model_dir, "retinaface")

    def identity(image):
        (face,) = find.detect(image)
        return embedder.embed(image, face)

    astro = astronaut()
    same = cosine_similarity(identity(astro), identity(np.ascontiguousarray(astro[:, ::-1])))
    other = cosine_similarity(identity(astro), identity(read(tom_hanks_path())))
    assert embedder.dimension == 128
    assert same > 0.8
    assert other < 0.3
