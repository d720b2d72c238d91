"""Hostile media for the service tests, and pipeline stand-ins that read inputs for real.

The files are built here from valid media (no downloads): cut short, damaged, lying about
their size, or two formats at once. ``checked_copy`` and ``checked_compare`` stand in for
``pipeline.run.process_file`` / ``compare_images`` without loading models, but read every
input with the pipeline's own readers first (magic bytes, header sizes, completeness,
PyAV decoding), so a hostile file fails exactly as it would in production. Module-level
functions, so spawned worker processes can import them.
"""

import io
import shutil
import struct
import zipfile
import zlib
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline.media import MediaKind, read_image, sniff_media_kind
from pipeline.options import RunOptions, RunSummary
from pipeline.run import CompareResult
from pipeline.video_decoder import iter_frames

# Put inside every hostile file, so a scan of the logs can prove no file content leaked.
CONTENT_MARKER = b"ENCLAVE-HOSTILE-CONTENT-MARKER"


def jpeg_bytes(seed: int = 0, size: int = 48) -> bytes:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    return encoded.tobytes()


def png_with_marker(seed: int = 0, size: int = 32) -> bytes:
    """A real PNG whose text chunk carries ``CONTENT_MARKER`` (still a valid image)."""
    rng = np.random.default_rng(seed)
    ok, encoded = cv2.imencode(".png", rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    assert ok
    data = encoded.tobytes()
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + png_chunk(b"tEXt", b"Comment\x00" + CONTENT_MARKER) + data[iend:]


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def truncated_jpeg() -> bytes:
    data = jpeg_bytes(1)
    return data[: len(data) // 2]


def truncated_png() -> bytes:
    data = png_with_marker(2)
    return data[: len(data) - 30]


def corrupt_png() -> bytes:
    """Every chunk and CRC in place, but the compressed pixels are noise."""
    width = height = 32
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    noise = bytes(np.random.default_rng(3).integers(0, 255, 900, dtype=np.uint8))
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"tEXt", b"Comment\x00" + CONTENT_MARKER)
        + png_chunk(b"IDAT", noise)
        + png_chunk(b"IEND", b"")
    )


def png_bomb_header(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny, well-formed PNG that declares 2.5 gigapixels (a decompression bomb's header)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * 3 * 16
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(row * 16))
        + png_chunk(b"IEND", b"")
    )


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.sh", b"#!/bin/sh\necho " + CONTENT_MARKER + b"\n")
    return buffer.getvalue()


def jpeg_zip_polyglot() -> bytes:
    """A valid JPEG with a ZIP appended: image viewers and unzip both accept it."""
    return jpeg_bytes(4) + zip_archive()


def wrong_magic() -> bytes:
    """Sent as ``image/png`` named ``.png``; the bytes are a GIF-like header and text."""
    return b"GIF89a" + CONTENT_MARKER + b"\x00" * 64


def mp4_bytes(frames: int = 6) -> bytes:
    """A small real H.264 MP4 (moov at the end, as PyAV writes it)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        rng = np.random.default_rng(5)
        for _ in range(frames):
            picture = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="bgr24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def truncated_mp4() -> bytes:
    data = mp4_bytes()
    return data[: len(data) // 2]


def corrupt_mp4() -> bytes:
    """An ``ftyp`` box (so it sniffs as a video) followed by noise."""
    noise = bytes(np.random.default_rng(6).integers(0, 255, 4096, dtype=np.uint8))
    return struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00isomiso2" + noise


def check_input(path: Path, options: RunOptions) -> MediaKind:
    """Read ``path`` the way the pipeline does: images decoded whole, videos to a frame."""
    kind = sniff_media_kind(path)
    if kind is MediaKind.IMAGE:
        read_image(path, options.limits)
    else:
        next(iter(iter_frames(path, options.limits)))
    return kind


def checked_copy(
    sources: Sequence[Path],
    target: Path,
    output: Path,
    options: RunOptions,
    *,
    on_progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> RunSummary:
    """Check every input with the pipeline's readers, then 'swap' by copying the target."""
    for source in sources:
        read_image(source, options.limits)
    kind = check_input(target, options)
    shutil.copyfile(target, output)
    return RunSummary(kind.value, 1, 1, 1, 0.001, ("cpu",), ("double",))


def checked_compare(a: Path, b: Path, options: RunOptions) -> CompareResult:
    """Read both photos with the pipeline's reader; report them as one person."""
    read_image(a, options.limits)
    read_image(b, options.limits)
    return CompareResult(similarity=1.0, same_person=True, threshold=0.5, faces_a=1, faces_b=1)
