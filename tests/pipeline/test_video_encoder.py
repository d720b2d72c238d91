"""Encoder choice and options are plain data: checked here without encoding anything."""

from pathlib import Path

import pytest

from pipeline.errors import InputError, UnsupportedMediaError
from pipeline.video_encoder import encoder_options, output_format


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
    assert encoder_options("libx264", 80, "veryfast") == {"crf": "10", "preset": "veryfast"}
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
