"""Encoder choice and options are plain data, checked without encoding anything; so is the
conversion of processed frames to the encoders' yuv420p."""

from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.errors import InputError, UnsupportedMediaError
from pipeline.video_encoder import encoder_options, output_format, yuv420p_frame
from tests.pipeline.photos import astronaut


@pytest.mark.parametrize(
    ("name", "asked", "expected"),
    [
        ("a.mp4", "libx264", ("mp4", "libx264")),
        ("a.M4V", "libx265", ("mp4", "libx265")),
        ("a.mov", "mpeg4", ("mov", "mpeg4")),
        ("a.mkv", "libvpx-vp9", ("matroska", "libvpx-vp9")),
        ("a.webm", "libx264", ("webm", "libvpx-vp9")),  # WebM holds no H.264
        ("a.webm", "libvpx-vp9", ("webm", "libvpx-vp9")),
    ],
)
def test_container_from_suffix_and_encoder_that_fits(name, asked, expected):
    assert output_format(Path(name), asked) == expected


def test_unknown_suffix_names_the_accepted_ones():
    with pytest.raises(UnsupportedMediaError, match=r"\.mp4, \.m4v, \.mov, \.mkv, \.webm"):
        output_format(Path("a.avi"), "libx264")


def test_quality_maps_to_crf_like_facefusion():
    assert encoder_options("libx264", 80, "veryfast") == {
        "crf": "10",
        "preset": "veryfast",
        "x264-params": "partitions=i8x8,i4x4",
    }
    assert "x264-params" not in encoder_options("libx264", 80, "medium")
    assert encoder_options("libx264", 100, "slow")["crf"] == "0"
    assert encoder_options("libx264", 0, "slow")["crf"] == "51"
    assert encoder_options("libx265", 50, "fast")["crf"] == "26"
    vp9 = encoder_options("libvpx-vp9", 80, "veryfast")
    assert vp9["crf"] == "13" and vp9["b"] == "0"  # constant quality, no bit-rate cap


def test_presets_follow_x264_names():
    assert encoder_options("libvpx-vp9", 80, "ultrafast")["cpu-used"] == "8"
    assert encoder_options("libvpx-vp9", 80, "veryslow")["cpu-used"] == "0"
    with pytest.raises(InputError, match="unknown preset 'turbo'"):
        encoder_options("libx264", 80, "turbo")


def _exact_bt601_luma(frame: np.ndarray) -> np.ndarray:
    blue, green, red = (frame[:, :, channel].astype(np.float64) for channel in range(3))
    return 16 + (65.481 * red + 128.553 * green + 24.966 * blue) / 255


def test_yuv420p_frame_is_the_bt601_limited_range_frame_swscale_would_make():
    frame = astronaut()  # 512x512: sharp edges and saturated colours
    fast = yuv420p_frame(frame).to_ndarray()
    reference = av.VideoFrame.from_ndarray(frame, format="bgr24").reformat(format="yuv420p")
    swscale = reference.to_ndarray()
    assert fast.shape == swscale.shape == (768, 512)
    # Same matrix and range as swscale (full range or BT.709 would be off by many levels).
    assert np.abs(fast.astype(int) - swscale).mean() < 1.0
    # Luma is the exact BT.601 value rounded.
    assert np.abs(fast[:512] - _exact_bt601_luma(frame)).max() < 0.6


def test_yuv420p_frame_refuses_odd_sizes():
    with pytest.raises(ValueError, match="even size"):
        yuv420p_frame(np.zeros((121, 160, 3), np.uint8))
