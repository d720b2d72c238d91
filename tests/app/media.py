"""Real test media for the service tests, from installed packages only (no downloads):
insightface's photos (t1.jpg: six faces; Tom Hanks), scikit-image's astronaut, and short
clips generated from them with PyAV."""

from fractions import Fraction
from importlib import resources
from pathlib import Path

import av
import cv2
import numpy as np


def insightface_image(name: str) -> Path:
    path = Path(str(resources.files("insightface"))) / "data" / "images" / name
    assert path.is_file(), f"{path} is missing from the installed insightface package"
    return path


def t1_bgr() -> np.ndarray:
    image = cv2.imread(str(insightface_image("t1.jpg")), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def astronaut_png() -> bytes:
    from skimage import data

    ok, encoded = cv2.imencode(".png", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    assert ok
    return encoded.tobytes()


def make_clip(
    path: Path, photo: np.ndarray, frames: int, size: tuple[int, int] = (320, 240)
) -> Path:
    """An H.264 clip of ``frames`` frames: a crop drifting slowly across ``photo``."""
    width, height = size
    photo_h, photo_w = photo.shape[:2]
    crop_w = int(min(photo_w, photo_h * width / height) * 0.9)
    crop_h = int(crop_w * height / width)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "20"}
        for index in range(frames):
            x = int((photo_w - crop_w) * index / max(1, frames - 1))
            crop = photo[:crop_h, x : x + crop_w]
            picture = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="bgr24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
