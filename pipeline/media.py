"""Image I/O and media sniffing: magic bytes decide, sizes are checked first, writes are atomic.

Trust nothing about a file but its bytes: the kind comes from the magic number (never the
suffix), an image's pixel count is read from its header and refused before any decoder
allocates memory (decompression bombs), and a truncated JPEG, PNG or WebP is refused instead
of being decoded half grey, as some OpenCV builds do. A file that is also a ZIP or a PDF (a
polyglot) is refused. Outputs appear whole or not at all.
"""

import os
import secrets
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import (
    CorruptMediaError,
    InputError,
    MediaTooLargeError,
    UnsupportedMediaError,
)
from pipeline.options import Limits
from pipeline.types import VisionFrame

_HEAD_BYTES = 1024
_ZIP_TAIL_BYTES = 65_536 + 22  # an end-of-central-directory record plus the longest comment
_EXPECTED = "expected an image (JPEG, PNG, WebP) or a video (MP4/MOV, Matroska/WebM, AVI, MPEG-TS)"
_IMAGE_SUFFIXES = {".jpg": ".jpg", ".jpeg": ".jpg", ".png": ".png", ".webp": ".webp"}
# ISO-BMFF brands that are still images (HEIF/AVIF), not the MP4/MOV videos we read.
_STILL_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"pnot"}

_Read = Callable[[int], bytes]


class MediaKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"


def sniff_media_kind(path: Path) -> MediaKind:
    """Tell an image from a video by its magic bytes; anything else is refused."""
    try:
        with path.open("rb") as stream:
            head = stream.read(_HEAD_BYTES)
            size = stream.seek(0, os.SEEK_END)
            stream.seek(max(0, size - _ZIP_TAIL_BYTES))
            tail = stream.read()
    except OSError as error:
        raise InputError(f"cannot read {path.name}: {error.strerror or error}") from error
    return _sniff(head, tail, size, path.name)


def sniff_bytes_kind(data: bytes, name: str = "the upload") -> MediaKind:
    """:func:`sniff_media_kind` for bytes already in memory."""
    return _sniff(data[:_HEAD_BYTES], data[-_ZIP_TAIL_BYTES:], len(data), name)


def _sniff(head: bytes, tail: bytes, size: int, name: str) -> MediaKind:
    if not head:
        raise UnsupportedMediaError(f"{name} is empty; {_EXPECTED}")
    kind = _kind_from_magic(head)
    if kind is None:
        raise UnsupportedMediaError(f"{name} is not a format we read; {_EXPECTED}")
    # A file that is also a ZIP or a PDF (a polyglot) is refused: the other reading is what
    # an attacker would rely on somewhere downstream.
    if b"%PDF-" in head or _ends_with_zip_directory(tail, size):
        raise UnsupportedMediaError(
            f"{name} starts like {kind.value} but also carries a ZIP or PDF; {_EXPECTED}"
        )
    return kind


def _kind_from_magic(head: bytes) -> MediaKind | None:
    if head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG\r\n\x1a\n"):
        return MediaKind.IMAGE
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return MediaKind.IMAGE
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return MediaKind.VIDEO
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return MediaKind.VIDEO
    if head[4:8] == b"ftyp":
        return None if head[8:12] in _STILL_IMAGE_BRANDS else MediaKind.VIDEO
    if head[4:8] in _QUICKTIME_ATOMS and struct.unpack(">I", head[:4])[0] >= 8:
        return MediaKind.VIDEO
    if _is_mpeg_ts(head):
        return MediaKind.VIDEO
    return None


def _is_mpeg_ts(head: bytes) -> bool:
    # One sync byte proves nothing (0x47 is "G"); three packets in step do.
    for packet_size, offset in ((188, 0), (192, 4)):
        positions = [offset + packet_size * n for n in range(3)]
        if positions[-1] < len(head) and all(head[p] == 0x47 for p in positions):
            return True
    return False


def _ends_with_zip_directory(tail: bytes, size: int) -> bool:
    start = tail.rfind(b"PK\x05\x06")
    while start >= 0:
        if start + 22 <= len(tail):
            (comment_length,) = struct.unpack("<H", tail[start + 20 : start + 22])
            tail_offset = size - len(tail)
            if tail_offset + start + 22 + comment_length == size:
                return True
        start = tail.rfind(b"PK\x05\x06", 0, start)
    return False


def read_image_header_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG, JPEG or WebP header, without decoding pixels."""
    try:
        with path.open("rb") as stream:
            return _header_size(_HeaderReader(stream.read), path.name)
    except OSError as error:
        raise InputError(f"cannot read {path.name}: {error.strerror or error}") from error


def read_image(path: Path, limits: Limits) -> VisionFrame:
    """Read a JPEG, PNG or WebP as BGR, refusing oversized or truncated files before decoding.

    Grey becomes BGR, alpha is dropped (as ``cv2.imread`` does) and the EXIF orientation of
    phone photos is applied.
    """
    if sniff_media_kind(path) is not MediaKind.IMAGE:
        raise UnsupportedMediaError(f"{path.name} is a video; expected an image (JPEG, PNG, WebP)")
    width, height = read_image_header_size(path)
    _check_pixels(width, height, limits, path.name)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read {path.name}: {error.strerror or error}") from error
    return _decode(data, path.name)


def decode_image_bytes(data: bytes, limits: Limits, name: str = "the image") -> VisionFrame:
    """:func:`read_image` for bytes already in memory (uploads)."""
    check_image_header(data, limits, name)
    return _decode(data, name)


def check_image_header(data: bytes, limits: Limits, name: str = "the image") -> tuple[int, int]:
    """Width and height from the header at the start of ``data``, within ``limits``.

    Needs only the first bytes of the file (its header), so it also vets large uploads
    without reading them whole.
    """
    if sniff_bytes_kind(data, name) is not MediaKind.IMAGE:
        raise UnsupportedMediaError(f"{name} is a video; expected an image (JPEG, PNG, WebP)")
    width, height = _header_size(_HeaderReader(_BytesSource(data).read), name)
    _check_pixels(width, height, limits, name)
    return width, height


def _check_pixels(width: int, height: int, limits: Limits, name: str) -> None:
    if width <= 0 or height <= 0:
        raise CorruptMediaError(f"{name} declares an empty {width}x{height} image")
    if width * height > limits.max_image_pixels:
        raise MediaTooLargeError(
            f"{name} is {width}x{height} ({width * height:,} pixels); "
            f"the limit is {limits.max_image_pixels:,} pixels"
        )


def _decode(data: bytes, name: str) -> VisionFrame:
    _check_complete(data, name)
    buffer = np.frombuffer(data, dtype=np.uint8)
    # IMREAD_COLOR turns grey into BGR, drops alpha and applies the EXIF orientation.
    try:
        frame = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    except cv2.error as error:
        raise CorruptMediaError(f"{name} could not be decoded: the file is damaged") from error
    if frame is None or frame.ndim != 3 or frame.shape[2] != 3:
        raise CorruptMediaError(f"{name} could not be decoded; the file is damaged")
    return np.ascontiguousarray(frame, dtype=np.uint8)


def _check_complete(data: bytes, name: str) -> None:
    """Refuse files cut short: OpenCV would decode their missing part as grey."""
    if data.startswith(b"\xff\xd8"):
        complete = _jpeg_is_complete(data)
    elif data.startswith(b"\x89PNG"):
        complete = _png_is_complete(data)
    else:
        (riff_size,) = struct.unpack("<I", data[4:8])
        complete = len(data) >= 8 + riff_size
    if not complete:
        raise CorruptMediaError(f"{name} is truncated (the file ends before the image does)")


def _jpeg_is_complete(data: bytes) -> bool:
    """Walk the marker segments and entropy-coded scans up to the end-of-image marker."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return False
        marker = data[position + 1]
        if marker == 0xD9:
            return True
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        position += 2 + length
        if marker == 0xDA:  # start of scan: skip entropy-coded data to the next real marker
            position = _end_of_scan(data, position)
    return position + 2 <= len(data) and data[position : position + 2] == b"\xff\xd9"


def _end_of_scan(data: bytes, position: int) -> int:
    while True:
        position = data.find(b"\xff", position)
        if position < 0 or position + 1 >= len(data):
            return len(data)
        following = data[position + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            position += 1 if following == 0xFF else 2
            continue
        return position


def _png_is_complete(data: bytes) -> bool:
    position = 8
    while position + 8 <= len(data):
        length, chunk_type = struct.unpack(">I4s", data[position : position + 8])
        end = position + 12 + length
        if end > len(data):
            return False
        if chunk_type == b"IEND":
            return True
        position = end
    return False


class _BytesSource:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    def read(self, count: int = -1) -> bytes:
        end = len(self._data) if count < 0 else self._position + count
        chunk = self._data[self._position : end]
        self._position += len(chunk)
        return chunk


class _HeaderReader:
    """Reads exactly what header parsing asks for, never the whole file."""

    def __init__(self, read: _Read) -> None:
        self._read = read

    def take(self, count: int, name: str) -> bytes:
        chunk = self._read(count)
        if len(chunk) < count:
            raise CorruptMediaError(f"{name} is truncated inside its header")
        return chunk


def _header_size(reader: _HeaderReader, name: str) -> tuple[int, int]:
    magic = reader.take(4, name)
    if magic == b"\x89PNG":
        rest = reader.take(20, name)  # signature tail, IHDR length and type, width, height
        if rest[8:12] != b"IHDR":
            raise CorruptMediaError(f"{name} is a PNG without an IHDR header")
        width, height = struct.unpack(">II", rest[12:20])
        return width, height
    if magic[:2] == b"\xff\xd8":
        return _jpeg_header_size(reader, magic[2:], name)
    if magic == b"RIFF":
        return _webp_header_size(reader, name)
    raise UnsupportedMediaError(f"{name} is not a JPEG, PNG or WebP image")


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_header_size(reader: _HeaderReader, pending: bytes, name: str) -> tuple[int, int]:
    buffered = pending
    while True:
        buffered += reader.take(max(0, 4 - len(buffered)), name)
        if buffered[0] != 0xFF:
            raise CorruptMediaError(f"{name} is a damaged JPEG (bad marker before the frame size)")
        marker = buffered[1]
        if marker == 0xFF:
            buffered = buffered[1:]
            continue
        (length,) = struct.unpack(">H", buffered[2:4])
        if length < 2:
            raise CorruptMediaError(f"{name} is a damaged JPEG (segment length {length})")
        segment = reader.take(length - 2, name)
        if marker in _JPEG_SOF:
            if len(segment) < 5:
                raise CorruptMediaError(f"{name} has a damaged JPEG frame header")
            height, width = struct.unpack(">HH", segment[1:5])
            return width, height
        if marker == 0xDA:
            raise CorruptMediaError(f"{name} is a JPEG with no frame header before its scan")
        buffered = b""


def _webp_header_size(reader: _HeaderReader, name: str) -> tuple[int, int]:
    header = reader.take(26, name)  # RIFF size, "WEBP", chunk type and size, 10 payload bytes
    chunk, payload = header[8:12], header[16:26]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(payload[4:7], "little")
        height = 1 + int.from_bytes(payload[7:10], "little")
        return width, height
    if chunk == b"VP8L":
        if payload[0] != 0x2F:
            raise CorruptMediaError(f"{name} is a damaged lossless WebP")
        (bits,) = struct.unpack("<I", payload[1:5])
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        if payload[3:6] != b"\x9d\x01\x2a":
            raise CorruptMediaError(f"{name} is a damaged lossy WebP")
        width, height = struct.unpack("<HH", payload[6:10])
        return width & 0x3FFF, height & 0x3FFF
    raise CorruptMediaError(f"{name} is a WebP with an unknown first chunk {chunk!r}")


def write_image(path: Path, frame: VisionFrame, quality: int = 90) -> None:
    """Encode by the path's suffix (.jpg, .jpeg, .png, .webp) and write it atomically.

    ``quality`` (0-100) is the JPEG/WebP quality; for PNG, which is lossless, it maps to
    the compression level as FaceFusion does (100 -> fastest, 0 -> smallest).
    """
    extension = _IMAGE_SUFFIXES.get(path.suffix.lower())
    if extension is None:
        raise UnsupportedMediaError(
            f"cannot write {path.name}: the suffix must be .jpg, .jpeg, .png or .webp"
        )
    if not path.parent.is_dir():
        raise InputError(f"the output folder {path.parent} does not exist")
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or frame.size == 0:
        raise ValueError(
            f"expected a non-empty HxWx3 uint8 BGR frame, got {frame.shape} {frame.dtype}"
        )
    quality = min(100, max(0, quality))
    if extension == ".jpg":
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    elif extension == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, max(1, quality)]
    else:
        params = [cv2.IMWRITE_PNG_COMPRESSION, round(9 - quality * 0.09)]
    ok, encoded = cv2.imencode(extension, frame, params)
    if not ok:
        raise CorruptMediaError(f"could not encode {path.name} as {extension}")
    with atomic_output(path) as partial, partial.open("xb") as stream:
        stream.write(encoded.tobytes())
        stream.flush()
        os.fsync(stream.fileno())


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``path``; move it into place only on success.

    The temporary file lives in the same directory so ``os.replace`` is an atomic rename,
    and it is removed on any error, cancellation or interrupt: no half-written output.
    """
    partial = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
    try:
        yield partial
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
