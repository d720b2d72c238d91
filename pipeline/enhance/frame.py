"""Frame enhancement: Real-ESRGAN x4plus (bundled, ncnn) upscales whole frames by 4.

ncnn runs the model on the CPU (or Vulkan where present) without onnxruntime. Frames are
processed in tiles with an overlap margin, so memory is bounded by the tile size rather
than the frame size, and the margin hides the seams a network sees at tile borders.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from pipeline.errors import ModelError
from pipeline.types import VisionFrame

if TYPE_CHECKING:
    from pipeline.models import ModelRegistry

SCALE = 4
INPUT_BLOB = "data"
OUTPUT_BLOB = "output"


def _tiles(length: int, tile: int) -> Iterator[tuple[int, int]]:
    for start in range(0, length, tile):
        yield start, min(start + tile, length)


class FrameEnhancer:
    """Real-ESRGAN x4plus in ncnn format: ``enhance(frame)`` returns a 4× larger frame.

    RGB in [0, 1] in, RGB in [0, 1] out (blob names ``data`` → ``output``); any input
    size works because the network is fully convolutional without pixel-unshuffle.
    """

    def __init__(
        self,
        param_path: Path,
        bin_path: Path,
        *,
        tile_size: int = 192,
        tile_padding: int = 10,
        threads: int | None = None,
        output_scale: int = SCALE,
        blend: float = 1.0,
    ) -> None:
        import ncnn

        if tile_size < 16 or tile_padding < 0:
            raise ValueError("tile_size must be >= 16 and tile_padding >= 0")
        if output_scale not in (1, 2, 3, 4):
            raise ValueError("output_scale must be 1, 2, 3 or 4")
        if not 0.0 <= blend <= 1.0:
            raise ValueError("blend must be within [0, 1]")
        self._net = ncnn.Net()
        self._net.opt.use_vulkan_compute = False
        if threads is not None:
            self._net.opt.num_threads = threads
        if self._net.load_param(str(param_path)) != 0 or self._net.load_model(str(bin_path)) != 0:
            raise ModelError(f"ncnn cannot load {param_path.name} / {bin_path.name}")
        self._pixel_type = ncnn.Mat.PixelType.PIXEL_BGR2RGB
        self._mat = ncnn.Mat
        self.tile_size = tile_size
        self.tile_padding = tile_padding
        self.output_scale = output_scale
        self.blend = blend
        """Weight of the network's output against a bicubic upscale (FaceFusion's
        ``--frame-enhancer-blend`` / 100)."""

    @classmethod
    def from_registry(
        cls,
        registry: "ModelRegistry",
        name: str = "realesrgan_x4plus",
        *,
        tile_size: int = 192,
        tile_padding: int = 10,
        threads: int | None = None,
        output_scale: int = SCALE,
        blend: float = 1.0,
    ) -> "FrameEnhancer":
        """Load a verified ``realesrgan_ncnn`` model (its .param and .bin) from the registry."""
        spec = registry.get(name)
        if spec.kind != "realesrgan_ncnn":
            raise ModelError(f"model {name!r} is a {spec.kind!r} model, not a frame enhancer")
        param_path, bin_path = registry.paths(name)
        return cls(
            param_path,
            bin_path,
            tile_size=tile_size,
            tile_padding=tile_padding,
            threads=threads,
            output_scale=output_scale,
            blend=blend,
        )

    def _run(self, tile: VisionFrame) -> VisionFrame:
        height, width = tile.shape[:2]
        blob = self._mat.from_pixels(np.ascontiguousarray(tile), self._pixel_type, width, height)
        blob.substract_mean_normalize([], [1.0 / 255.0] * 3)
        extractor = self._net.create_extractor()
        extractor.input(INPUT_BLOB, blob)
        status, output = extractor.extract(OUTPUT_BLOB)
        if status != 0:
            raise ModelError(f"Real-ESRGAN inference failed (ncnn status {status})")
        rgb = np.clip(np.asarray(output, dtype=np.float32), 0.0, 1.0).transpose(1, 2, 0)
        return np.asarray(np.rint(rgb[:, :, ::-1] * 255.0), dtype=np.uint8)

    def enhance(self, frame: VisionFrame) -> VisionFrame:
        """The frame upscaled ×4 (then resized to ``output_scale`` if that is smaller)."""
        height, width = frame.shape[:2]
        result = np.empty((height * SCALE, width * SCALE, 3), dtype=np.uint8)
        pad = self.tile_padding
        for y1, y2 in _tiles(height, self.tile_size):
            for x1, x2 in _tiles(width, self.tile_size):
                # run on the tile plus a margin of real context, keep only the tile's part
                py1, py2 = max(y1 - pad, 0), min(y2 + pad, height)
                px1, px2 = max(x1 - pad, 0), min(x2 + pad, width)
                upscaled = self._run(frame[py1:py2, px1:px2])
                if self.blend < 1.0:
                    size = (upscaled.shape[1], upscaled.shape[0])
                    plain = cv2.resize(frame[py1:py2, px1:px2], size, interpolation=cv2.INTER_CUBIC)
                    upscaled = np.asarray(
                        cv2.addWeighted(upscaled, self.blend, plain, 1.0 - self.blend, 0.0),
                        dtype=np.uint8,
                    )
                top, left = (y1 - py1) * SCALE, (x1 - px1) * SCALE
                result[y1 * SCALE : y2 * SCALE, x1 * SCALE : x2 * SCALE] = upscaled[
                    top : top + (y2 - y1) * SCALE, left : left + (x2 - x1) * SCALE
                ]
        if self.output_scale == SCALE:
            return result
        size = (width * self.output_scale, height * self.output_scale)
        return np.asarray(cv2.resize(result, size, interpolation=cv2.INTER_AREA), np.uint8)
