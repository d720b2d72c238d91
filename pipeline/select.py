"""Which target faces to swap: ``one``, ``many`` or those near a ``reference`` identity."""

from collections.abc import Callable, Sequence

from pipeline.embed import cosine_similarity
from pipeline.faces import Face
from pipeline.options import FaceSelectorMode, FaceSelectorOrder
from pipeline.types import Embedding

_ORDER_KEYS: dict[FaceSelectorOrder, Callable[[Face], float]] = {
    FaceSelectorOrder.LEFT_RIGHT: lambda face: float(face.box[0]),
    FaceSelectorOrder.RIGHT_LEFT: lambda face: -float(face.box[0]),
    FaceSelectorOrder.TOP_BOTTOM: lambda face: float(face.box[1]),
    FaceSelectorOrder.BOTTOM_TOP: lambda face: -float(face.box[1]),
    FaceSelectorOrder.LARGE_SMALL: lambda face: -face.area,
    FaceSelectorOrder.SMALL_LARGE: lambda face: face.area,
    FaceSelectorOrder.BEST_WORST: lambda face: -face.score,
}


def order_faces(faces: Sequence[Face], order: FaceSelectorOrder) -> list[Face]:
    """``faces`` sorted as FaceFusion's ``--face-selector-order`` does."""
    return sorted(faces, key=_ORDER_KEYS[order])


def face_distance(a: Embedding, b: Embedding) -> float:
    """Cosine distance (1 − cosine similarity), FaceFusion's reference-face distance."""
    return 1.0 - cosine_similarity(a, b)


def select_faces(
    faces: Sequence[Face],
    mode: FaceSelectorMode,
    order: FaceSelectorOrder,
    reference: Embedding | None = None,
    reference_distance: float = 0.6,
) -> list[Face]:
    """The faces to process, in ``order``.

    ``reference`` mode keeps faces whose embedding is within ``reference_distance`` of
    ``reference``; faces without an embedding are never selected in that mode.
    """
    ordered = order_faces(faces, order)
    if mode is FaceSelectorMode.ONE:
        return ordered[:1]
    if mode is FaceSelectorMode.MANY:
        return ordered
    if reference is None:
        raise ValueError("reference mode needs a reference embedding")
    return [
        face
        for face in ordered
        if face.embedding is not None
        and face_distance(face.embedding, reference) <= reference_distance
    ]
