import numpy as np
import pytest

from pipeline.faces import Face
from pipeline.options import FaceSelectorMode, FaceSelectorOrder
from pipeline.select import face_distance, order_faces, select_faces


def face(x: float, y: float, size: float, score: float = 0.9, embedding=None) -> Face:
    return Face(
        box=np.array([x, y, x + size, y + size], np.float32),
        kps5=np.zeros((5, 2), np.float32),
        score=score,
        embedding=None if embedding is None else np.array(embedding, np.float32),
    )


FACES = [face(300, 10, 50, 0.7), face(10, 200, 120, 0.99), face(150, 100, 80, 0.8)]


@pytest.mark.parametrize(
    ("order", "expected_x"),
    [
        (FaceSelectorOrder.LEFT_RIGHT, [10, 150, 300]),
        (FaceSelectorOrder.RIGHT_LEFT, [300, 150, 10]),
        (FaceSelectorOrder.TOP_BOTTOM, [300, 150, 10]),
        (FaceSelectorOrder.BOTTOM_TOP, [10, 150, 300]),
        (FaceSelectorOrder.LARGE_SMALL, [10, 150, 300]),
        (FaceSelectorOrder.SMALL_LARGE, [300, 150, 10]),
        (FaceSelectorOrder.BEST_WORST, [10, 150, 300]),
    ],
)
def test_order(order: FaceSelectorOrder, expected_x: list[int]) -> None:
    assert [int(f.box[0]) for f in order_faces(FACES, order)] == expected_x


def test_one_takes_the_first_in_order_and_many_takes_all() -> None:
    (only,) = select_faces(FACES, FaceSelectorMode.ONE, FaceSelectorOrder.RIGHT_LEFT)
    assert int(only.box[0]) == 300
    assert len(select_faces(FACES, FaceSelectorMode.MANY, FaceSelectorOrder.LEFT_RIGHT)) == 3


def test_reference_keeps_faces_within_the_distance() -> None:
    faces = [
        face(0, 0, 10, embedding=[1, 0, 0]),
        face(20, 0, 10, embedding=[0.9, 0.1, 0]),
        face(40, 0, 10, embedding=[0, 1, 0]),
        face(60, 0, 10),
    ]
    reference = np.array([1, 0, 0], np.float32)
    chosen = select_faces(
        faces, FaceSelectorMode.REFERENCE, FaceSelectorOrder.LEFT_RIGHT, reference, 0.1
    )
    assert [int(f.box[0]) for f in chosen] == [0, 20]
    assert face_distance(reference, reference) == pytest.approx(0.0)
    wider = select_faces(
        faces, FaceSelectorMode.REFERENCE, FaceSelectorOrder.LEFT_RIGHT, reference, 1.0
    )
    assert len(wider) == 3
