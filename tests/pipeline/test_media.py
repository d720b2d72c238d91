"""Images: sniffed by magic bytes, size-checked before decoding, refused when cut short,
written whole or not at all."""

import contextlib
import io
import struct
import tracemalloc
import zipfile
import zlib
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import (
    CorruptMediaError,
    InputError,
    MediaTooLargeError,
    UnsupportedMediaError,
)
from pipeline.media import (
    MediaKind,
    decode_image_bytes,
    read_image,
    read_image_header_size,
    sniff_media_kind,
    write_image,
)
from pipeline.options import Limits
from tests.pipeline.media_fixtures import MEGAMIND, make_clip
from tests.pipeline.photos import astronaut, t1_path

LIMITS = Limits()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    # Odd sizes catch width/height mix-ups in the header parsers.
    return np.ascontiguousarray(astronaut()[:301, :257])


def _encoded(frame: np.ndarray, extension: str, *params: int) -> bytes:
    ok, data = cv2.imencode(extension, frame, list(params))
    assert ok
    return data.tobytes()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


# --- sniffing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extension", "params"),
    [
        (".jpg", ()),
        (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
        (".png", ()),
        (".webp", (cv2.IMWRITE_WEBP_QUALITY, 80)),
        (".webp", (cv2.IMWRITE_WEBP_QUALITY, 101)),  # lossless: VP8L
    ],
)
def test_images_are_recognised_and_their_header_size_read_without_decoding(
    tmp_path, photo, extension, params
):
    path = _write(tmp_path / f"picture{extension}", _encoded(photo, extension, *params))
    assert sniff_media_kind(path) is MediaKind.IMAGE
    assert read_image_header_size(path) == (257, 301)


def _extended_webp(frame: np.ndarray) -> bytes:
    """A WebP in the extended layout (VP8X canvas header, then the VP8 bitstream)."""
    simple = _encoded(frame, ".webp", cv2.IMWRITE_WEBP_QUALITY, 80)
    assert simple[12:16] == b"VP8 "
    height, width = frame.shape[:2]
    canvas = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(canvas)) + canvas + simple[12:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_extended_webp_reports_its_canvas_size(tmp_path, photo):
    path = _write(tmp_path / "extended.webp", _extended_webp(photo))
    assert read_image_header_size(path) == (257, 301)
    assert read_image(path, LIMITS).shape == (301, 257, 3)


def test_a_real_photo_reports_its_size(tmp_path):
    t1 = t1_path()
    width, height = read_image_header_size(t1)
    assert read_image(t1, LIMITS).shape == (height, width, 3)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov", ".webm", ".ts"])
def test_videos_are_recognised_by_their_container(tmp_path, suffix):
    encoder = "libvpx-vp9" if suffix == ".webm" else "libx264"
    audio = "libopus" if suffix == ".webm" else "aac"
    clip = make_clip(
        tmp_path / f"clip{suffix}",
        fps=Fraction(25),
        size=(64, 48),
        encoder=encoder,
        audio_encoder=audio,
    )
    assert sniff_media_kind(clip) is MediaKind.VIDEO


def test_avi_is_recognised(tmp_path):
    clip = make_clip(tmp_path / "clip.avi", size=(64, 48), encoder="mpeg4", with_audio=False)
    assert sniff_media_kind(clip) is MediaKind.VIDEO
    if MEGAMIND.is_file():
        assert sniff_media_kind(MEGAMIND) is MediaKind.VIDEO


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "not a picture")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("archive.zip", _zip_bytes()),
        ("document.pdf", b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"),
        ("notes.jpg", b"this is plain text with an image's name\n"),
        ("empty.png", b""),
        ("photo.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"),
        ("shell.mp4", b"#!/bin/sh\necho hello\n"),
    ],
)
def test_anything_else_is_refused_naming_what_is_expected(tmp_path, name, content):
    path = _write(tmp_path / name, content)
    with pytest.raises(UnsupportedMediaError, match=r"expected an image \(JPEG, PNG, WebP\)"):
        sniff_media_kind(path)


def test_jpeg_with_a_zip_appended_is_refused_as_a_polyglot(tmp_path, photo):
    path = _write(tmp_path / "innocent.jpg", _encoded(photo, ".jpg") + _zip_bytes())
    # Both readers accept it: that is what makes it dangerous.
    assert zipfile.is_zipfile(path)
    assert cv2.imread(str(path)) is not None
    with pytest.raises(UnsupportedMediaError, match="ZIP or PDF"):
        sniff_media_kind(path)
    with pytest.raises(UnsupportedMediaError):
        read_image(path, LIMITS)


def test_png_that_is_also_a_pdf_is_refused(tmp_path, photo):
    png = _encoded(photo, ".png")
    # PDF readers look for the header anywhere in the first kilobyte.
    polyglot = png[:33] + _png_chunk(b"tEXt", b"c\x00%PDF-1.4 hidden") + png[33:]
    path = _write(tmp_path / "poly.png", polyglot)
    assert cv2.imread(str(path)) is not None
    with pytest.raises(UnsupportedMediaError, match="ZIP or PDF"):
        sniff_media_kind(path)


def test_a_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_image(tmp_path / "absent.jpg", LIMITS)


# --- decompression bombs and limits ---------------------------------------------------------


def _png_bomb(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    tiny_idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", tiny_idat)
        + _png_chunk(b"IEND", b"")
    )


def test_png_header_claiming_50000x50000_is_refused_before_decoding(tmp_path):
    path = _write(tmp_path / "bomb.png", _png_bomb(50_000, 50_000))
    assert path.stat().st_size < 200
    tracemalloc.start()
    try:
        with pytest.raises(MediaTooLargeError, match="50000x50000"):
            read_image(path, LIMITS)
        with pytest.raises(MediaTooLargeError):
            decode_image_bytes(path.read_bytes(), LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Decoding would need 7.5 GB; refusing from the header needs next to nothing.
    assert peak < 1_000_000


@pytest.mark.parametrize("extension", [".jpg", ".png", ".webp"])
def test_image_over_the_pixel_limit_is_refused(tmp_path, photo, extension):
    path = _write(tmp_path / f"big{extension}", _encoded(photo, extension))
    with pytest.raises(MediaTooLargeError, match="257x301"):
        read_image(path, Limits(max_image_pixels=257 * 301 - 1))
    assert read_image(path, Limits(max_image_pixels=257 * 301)).shape == (301, 257, 3)


# --- truncation and damage ------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0.5, 0.9, -2])
@pytest.mark.parametrize("progressive", [0, 1])
def test_truncated_jpeg_is_refused(photo, keep, progressive):
    # Depending on the build, OpenCV decodes a cut JPEG with its missing part grey.
    data = _encoded(photo, ".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, progressive)
    cut = data[: int(len(data) * keep)] if keep > 0 else data[:keep]
    with pytest.raises(CorruptMediaError, match="truncated"):
        decode_image_bytes(cut, LIMITS)


@pytest.mark.parametrize("cut", [-12, 0.6])
def test_truncated_png_is_refused(tmp_path, photo, cut):
    data = _encoded(photo, ".png")
    short = data[:cut] if isinstance(cut, int) else data[: int(len(data) * cut)]
    path = _write(tmp_path / "short.png", short)
    with pytest.raises(CorruptMediaError, match="truncated"):
        read_image(path, LIMITS)


def test_truncated_webp_is_refused(photo):
    data = _encoded(photo, ".webp")
    with pytest.raises(CorruptMediaError, match="truncated"):
        decode_image_bytes(data[: len(data) // 2], LIMITS)


def test_jpeg_cut_inside_its_header_is_refused(photo):
    data = _encoded(photo, ".jpg")
    with pytest.raises(CorruptMediaError):
        decode_image_bytes(data[:40], LIMITS)


def test_damaged_png_data_is_refused(photo):
    data = bytearray(_encoded(photo, ".png"))
    idat = data.index(b"IDAT")
    data[idat + 40 : idat + 80] = b"\xff" * 40
    with pytest.raises(CorruptMediaError):
        decode_image_bytes(bytes(data), LIMITS)


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from(
        [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x10\x00\x00\x00WEBPVP8 "]
    ),
    body=st.binary(max_size=300),
)
def test_garbage_behind_an_image_signature_is_an_input_error_never_a_crash(prefix, body):
    try:
        frame = decode_image_bytes(prefix + body, LIMITS)
    except InputError:
        return
    assert frame.ndim == 3 and frame.shape[2] == 3


_SMALL = np.ascontiguousarray(astronaut()[::8, ::8])
_REAL_IMAGES = [
    cv2.imencode(".jpg", _SMALL)[1].tobytes(),
    cv2.imencode(".png", _SMALL)[1].tobytes(),
    cv2.imencode(".webp", _SMALL)[1].tobytes(),
]


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(min_value=1, max_value=2000), flip=st.integers(min_value=0, max_value=255))
def test_damaged_real_images_are_an_input_error_never_a_crash(cut, flip):
    for data in _REAL_IMAGES:
        damaged = bytearray(data[: max(12, len(data) - cut)])
        damaged[min(len(damaged) - 1, 20 + cut)] ^= flip
        with contextlib.suppress(InputError):
            decode_image_bytes(bytes(damaged), LIMITS)


def test_a_video_is_not_accepted_as_an_image(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", size=(64, 48), with_audio=False)
    with pytest.raises(UnsupportedMediaError, match="video"):
        read_image(clip, LIMITS)
    with pytest.raises(UnsupportedMediaError, match="video"):
        decode_image_bytes(clip.read_bytes(), LIMITS)


# --- colour conversion ----------------------------------------------------------------------


def test_grey_and_alpha_images_come_back_as_bgr(photo):
    grey = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    frame = decode_image_bytes(_encoded(grey, ".png"), LIMITS)
    assert frame.shape == (301, 257, 3) and frame.dtype == np.uint8
    assert np.array_equal(frame[:, :, 0], grey) and np.array_equal(frame[:, :, 2], grey)

    with_alpha = cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)
    with_alpha[:, :, 3] = 7
    frame = decode_image_bytes(_encoded(with_alpha, ".png"), LIMITS)
    assert np.array_equal(frame, photo)


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    entry = struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)  # tag, SHORT, count, value
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + b"\x00" * 4
    app1 = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def test_phone_photo_orientation_is_applied(photo):
    # EXIF orientation 6: the camera stored the picture turned; show it turned back.
    data = _with_exif_orientation(_encoded(photo, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 95), 6)
    frame = decode_image_bytes(data, LIMITS)
    assert frame.shape == (257, 301, 3)
    upright = cv2.rotate(photo, cv2.ROTATE_90_CLOCKWISE)
    assert cv2.PSNR(frame, upright) > 30


# --- writing --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".webp", ".PNG"])
def test_written_images_read_back(tmp_path, photo, suffix):
    path = tmp_path / f"out{suffix}"
    write_image(path, photo, quality=95)
    assert sniff_media_kind(path) is MediaKind.IMAGE
    back = read_image(path, LIMITS)
    assert back.shape == photo.shape
    if suffix.lower() == ".png":
        assert np.array_equal(back, photo)
    else:
        assert cv2.PSNR(back, photo) > 30
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_jpeg_quality_is_applied(tmp_path, photo):
    write_image(tmp_path / "low.jpg", photo, quality=10)
    write_image(tmp_path / "high.jpg", photo, quality=95)
    assert (tmp_path / "low.jpg").stat().st_size < (tmp_path / "high.jpg").stat().st_size / 2


def test_unknown_output_suffix_is_refused_and_nothing_written(tmp_path, photo):
    with pytest.raises(UnsupportedMediaError, match=r"\.jpg, \.jpeg, \.png or \.webp"):
        write_image(tmp_path / "out.gif", photo)
    assert list(tmp_path.iterdir()) == []


def test_failed_encode_leaves_nothing_and_keeps_the_previous_output(tmp_path, photo):
    path = tmp_path / "out.png"
    write_image(path, photo)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        write_image(path, photo.astype(np.float32))
    with pytest.raises(ValueError, match="non-empty"):
        write_image(path, np.zeros((0, 10, 3), np.uint8))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_missing_output_folder_is_refused(tmp_path, photo):
    with pytest.raises(InputError, match="does not exist"):
        write_image(tmp_path / "missing" / "out.png", photo)


def test_failed_move_into_place_leaves_no_temporary_file(tmp_path, photo):
    occupied = tmp_path / "out.png"
    occupied.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(OSError):
        write_image(occupied, photo)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert occupied.is_dir()
