"""Real test photos from installed packages (no downloads): t1.jpg, Tom Hanks, astronaut."""

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from pipeline.types import VisionFrame


def insightface_image(name: str) -> Path:
    spec = importlib.util.find_spec("insightface")
    assert spec is not None and spec.origin is not None, "insightface (dev extra) is missing"
    path = Path(spec.origin).parent / "data" / "images" / name
    assert path.is_file(), f"{path} is missing from the insightface package"
    return path


def t1_path() -> Path:
    """insightface's group photo with six faces."""
    return insightface_image("t1.jpg")


def tom_hanks_path() -> Path:
    return insightface_image("Tom_Hanks_54745.png")


def astronaut() -> VisionFrame:
    """scikit-image's astronaut (Eileen Collins), BGR."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def write_astronaut(directory: Path) -> Path:
    path = directory / "astronaut.png"
    cv2.imwrite(str(path), astronaut())
    return path


def read(path: Path) -> VisionFrame:
    image = cv2.imread(str(path))
    assert image is not None, path
    return np.asarray(image, dtype=np.uint8)
