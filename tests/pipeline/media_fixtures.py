"""Test media built from registry photos: short clips with camera motion and a soundtrack.

Used by the media/video tests and by the pipeline's end-to-end tests. Everything is made
in the test's tmp_path from files that ship with installed packages; nothing is fetched.
"""

import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.pipeline.photos import astronaut

MEGAMIND = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")
"""Debian opencv-doc's sample: 720x528, 270 frames at 23.976 fps, faces, AC-3 audio."""


def require_media(path: Path) -> Path:
    """Skip when a system test file is absent, but fail when ENCLAVE_REQUIRE_MEDIA=1 (CI)."""
    if path.is_file():
        return path
    reason = f"{path} is absent (apt-get install opencv-doc)"
    if os.environ.get("ENCLAVE_REQUIRE_MEDIA") == "1":
        pytest.fail(f"{reason}; required because ENCLAVE_REQUIRE_MEDIA=1")
    pytest.skip(reason)


def panning_frames(
    photo: np.ndarray, count: int, size: tuple[int, int] = (320, 240)
) -> Iterator[np.ndarray]:
    """``count`` frames of ``size`` (w, h): a crop that drifts across ``photo``.

    The crop covers most of the photo (faces stay whole) and moves a few pixels per frame,
    so consecutive frames differ as a hand-held camera's would.
    """
    width, height = size
    photo_h, photo_w = photo.shape[:2]
    crop_w = int(min(photo_w, photo_h * width / height) * 0.9)
    crop_h = int(crop_w * height / width)
    spare_x, spare_y = photo_w - crop_w, photo_h - crop_h
    for index in range(count):
        phase = index / max(1, count - 1)
        x = int(spare_x * (0.5 + 0.5 * math.sin(2 * math.pi * phase)))
        y = int(spare_y * phase)
        crop = photo[y : y + crop_h, x : x + crop_w]
        yield cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)


def make_clip(
    path: Path,
    frames: Iterable[np.ndarray] | None = None,
    fps: Fraction = Fraction(25),
    with_audio: bool = True,
    size: tuple[int, int] = (320, 240),
    *,
    encoder: str = "libx264",
    audio_encoder: str = "aac",
    tone: Callable[[np.ndarray], np.ndarray] | None = None,
    display_rotation: int = 0,
    video_options: dict[str, str] | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a clip (H.264 + AAC by default; container from the suffix) of ``frames``.

    Without ``frames``: 40 frames panning across the astronaut. Frames of another size are
    resized to ``size``. The audio lasts exactly as long as the video; ``tone`` maps sample
    times (seconds) to a mono signal in [-1, 1] (default: a 440 Hz sine).
    ``display_rotation`` records a display matrix, as phones do for portrait clips;
    ``video_options`` replace the encoder options (default: fast x264 at CRF 18);
    ``metadata`` is written as container tags (e.g. a phone's ``location``).
    """
    if frames is None:
        frames = panning_frames(astronaut(), 40, size)
    width, height = size
    with av.open(str(path), mode="w") as container:
        container.metadata.update(metadata or {})
        video = container.add_stream(encoder, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = 1 / fps
        if display_rotation:
            video.set_display_rotation(display_rotation)
        if video_options is not None:
            video.options = video_options
        elif encoder == "libx264":
            video.options = {"preset": "ultrafast", "crf": "18"}
        audio = None
        if with_audio:
            audio = container.add_stream(audio_encoder, rate=48000)
            audio.codec_context.layout = "stereo"
        count = 0
        for count, picture in enumerate(frames, start=1):
            if (picture.shape[1], picture.shape[0]) != size:
                picture = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)  # noqa: PLW2901
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="bgr24")
            video_frame.pts = count - 1
            video_frame.time_base = 1 / fps
            container.mux(video.encode(video_frame))
        container.mux(video.encode(None))
        if audio is not None:
            _write_tone(container, audio, float(count / fps), tone or sine)
    return path


def make_audio_only(path: Path, seconds: float = 1.0) -> Path:
    """An audio-only file (container from the suffix, e.g. .m4a or .mp4)."""
    with av.open(str(path), mode="w", format="mp4") as container:
        audio = container.add_stream("aac", rate=48000)
        audio.codec_context.layout = "stereo"
        _write_tone(container, audio, seconds, sine)
    return path


def sine(times: np.ndarray) -> np.ndarray:
    return 0.2 * np.sin(2 * np.pi * 440.0 * times)


def beep(start: float, stop: float) -> Callable[[np.ndarray], np.ndarray]:
    """Silence with a loud 1 kHz tone between ``start`` and ``stop`` seconds: a sync mark."""

    def signal(times: np.ndarray) -> np.ndarray:
        inside = (times >= start) & (times < stop)
        return np.where(inside, 0.5 * np.sin(2 * np.pi * 1000.0 * times), 0.0)

    return signal


def _write_tone(container, audio, seconds: float, signal, rate: int = 48000) -> None:
    total = round(seconds * rate)
    block = 1024
    for start in range(0, total, block):
        n = min(block, total - start)
        times = np.arange(start, start + n) / rate
        tone = np.asarray(signal(times), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        container.mux(audio.encode(frame))
    container.mux(audio.encode(None))


@dataclass(frozen=True)
class ClipFacts:
    """What a viewer would notice about a video file, measured by decoding it."""

    frames: int  # decoded video frames
    fps: Fraction
    duration: float  # video stream duration in seconds
    width: int
    height: int
    audio_codec: str | None  # FFmpeg's codec name: "aac", "mp3" (not the decoder "mp3float")
    audio_duration: float | None


def clip_facts(path: Path) -> ClipFacts:
    """Decode ``path`` fully and report frame count, rate, durations and audio codec."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        fps = Fraction(video.average_rate or video.guessed_rate)
        width, height = video.codec_context.width, video.codec_context.height
        audio_stream = container.streams.audio[0] if container.streams.audio else None
        frames = 0
        last_end = 0.0
        audio_end = 0.0
        streams = [video] + ([audio_stream] if audio_stream is not None else [])
        for packet in container.demux(streams):
            if packet.stream.type == "video":
                frames += len(packet.decode())  # the final empty packet flushes the decoder
            if packet.pts is None:
                continue
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            if packet.stream.type == "audio":
                audio_end = max(audio_end, end)
            else:
                last_end = max(last_end, end)
        duration = float(video.duration * video.time_base) if video.duration else last_end
    return ClipFacts(
        frames=frames,
        fps=fps,
        duration=duration,
        width=width,
        height=height,
        audio_codec=audio_stream.codec_context.codec.canonical_name if audio_stream else None,
        audio_duration=audio_end if audio_stream is not None else None,
    )


def audio_samples(path: Path) -> tuple[np.ndarray, int]:
    """The first audio stream of ``path`` decoded to mono float32, and its sample rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [
            frame.to_ndarray().reshape(frame.layout.nb_channels, -1)[0]
            for frame in container.decode(stream)
        ]
        return np.concatenate(chunks).astype(np.float32), stream.codec_context.sample_rate


def first_loud_second(samples: np.ndarray, rate: int, threshold: float = 0.1) -> float:
    """When the signal first exceeds ``threshold`` (seconds from the stream's start)."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        raise AssertionError("the audio never gets loud")
    return float(loud[0] / rate)
